//! Progress messages, on stderr so that they never mix with a report on stdout.

pub fn log(message: impl AsRef<str>) {
    eprintln!("bench: {}", message.as_ref());
}

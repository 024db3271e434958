//! One line for an error and its sources, the form in which vk and its providers show errors to
//! people: logs, Events, pod status messages and provider errors.

#[cfg(test)]
mod tests;

/// `error` and its sources on one line, joined by `": "`. A source whose text the line already
/// quotes is not repeated, since many messages interpolate their source.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    for source in std::iter::successors(error.source(), |e| e.source()) {
        let text = source.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

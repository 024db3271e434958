use super::*;

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
enum ConfigError {
    #[error("cannot read the configuration")]
    Read(#[source] std::io::Error),
    #[error("cannot read the configuration: {0}")]
    Quoting(#[source] std::io::Error),
    #[error("cannot start")]
    Nested(#[source] Box<ConfigError>),
}

fn denied() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied")
}

#[test]
fn sources_follow_the_message() {
    assert_eq!(
        error_chain(&ConfigError::Nested(Box::new(ConfigError::Read(denied())))),
        "cannot start: cannot read the configuration: permission denied"
    );
}

#[test]
fn a_source_the_message_quotes_is_not_repeated() {
    assert_eq!(
        error_chain(&ConfigError::Quoting(denied())),
        "cannot read the configuration: permission denied"
    );
    assert_eq!(
        error_chain(&ConfigError::Nested(Box::new(ConfigError::Quoting(
            denied()
        )))),
        "cannot start: cannot read the configuration: permission denied"
    );
}

#[test]
fn an_error_without_sources_is_its_message() {
    assert_eq!(error_chain(&denied()), "permission denied");
}

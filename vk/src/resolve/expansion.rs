//! `$(VAR)` expansion, byte for byte the kubelet's (`third_party/forked/golang/expansion`).
//!
//! `$(NAME)` is replaced by the value the lookup gives, or left literally when it gives none;
//! `$$` is an escaped `$`; any other `$` is copied as is. Substituted values are not re-scanned.

#[cfg(test)]
mod tests;

/// Expands every `$(NAME)` reference in `input` with `lookup`.
pub(super) fn expand<'v>(input: &str, mut lookup: impl FnMut(&str) -> Option<&'v str>) -> String {
    let mut output = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        output.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        rest = if let Some(escaped) = after.strip_prefix('$') {
            output.push('$');
            escaped
        } else if let Some(reference) = after.strip_prefix('(') {
            match reference.split_once(')') {
                Some((name, remainder)) => {
                    match lookup(name) {
                        Some(value) => output.push_str(value),
                        None => {
                            output.push_str("$(");
                            output.push_str(name);
                            output.push(')');
                        }
                    }
                    remainder
                }
                // An unterminated reference is text; scanning goes on after the `(`.
                None => {
                    output.push_str("$(");
                    reference
                }
            }
        } else {
            output.push('$');
            after
        };
    }
    output.push_str(rest);
    output
}

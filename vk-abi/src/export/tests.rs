use super::*;

#[test]
fn exported_symbol_is_the_one_abi_stable_loads() {
    let source = include_str!("../export.rs");
    let quoted = format!("\"{}\"", abi_stable::library::ROOT_MODULE_LOADER_NAME);
    assert!(
        source.contains(&quoted),
        "export_provider! must export {quoted}"
    );
}

#[test]
fn panics_become_errors() {
    let result = guarded::<()>(|| panic!("boom"));
    let error = ProviderError::from(result.unwrap_err());
    assert_eq!(error.kind, crate::ErrorKind::Other);
    assert_eq!(error.message, "provider panicked: boom");
    let formatted = guarded::<()>(|| panic!("code {}", 7)).unwrap_err();
    assert_eq!(formatted.message.as_str(), "provider panicked: code 7");
}

#[test]
fn absent_values_cross_as_empty_json() {
    assert!(encode_option::<u8>(None).unwrap().is_empty());
    assert_eq!(encode_option(Some(1)).unwrap().as_slice(), b"1");
}

#[test]
fn a_providers_crate_is_the_first_segment_of_its_type_path() {
    assert_eq!(crate_of::<ProviderError>(), "vk_abi");
    assert_eq!(crate_of::<Vec<ProviderError>>(), "alloc");
}

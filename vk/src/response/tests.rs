use super::*;

#[test]
fn provider_errors_map_to_http() {
    let status = |kind| provider_error(&vk_abi::ProviderError::new(kind, "x")).status();
    assert_eq!(status(vk_abi::ErrorKind::NotFound), StatusCode::NOT_FOUND);
    assert_eq!(
        status(vk_abi::ErrorKind::InvalidInput),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(vk_abi::ErrorKind::Unsupported),
        StatusCode::NOT_IMPLEMENTED
    );
    assert_eq!(
        status(vk_abi::ErrorKind::Unavailable),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(vk_abi::ErrorKind::Other),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

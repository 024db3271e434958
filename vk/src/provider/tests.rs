use super::*;

#[test]
fn provider_files_are_found_by_name() {
    let dir = std::env::temp_dir().join(format!("vk-provider-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in [
        "libvk_b.so",
        "libvk_a.so",
        "libvk_.so",
        "libother.so",
        "libvk_c.so.1",
    ] {
        std::fs::write(dir.join(file), b"").unwrap();
    }
    assert_eq!(provider_files(&dir).unwrap(), ["a", "b"]);
    assert_eq!(library_path(&dir, "a"), dir.join("libvk_a.so"));
    let unknown = open(&dir, "zzz").unwrap_err().to_string();
    assert!(unknown.contains("providers found: a, b"), "{unknown}");
    let not_elf = open(&dir, "a").unwrap_err();
    assert!(
        matches!(not_elf, LoadError::NotAProvider { .. }),
        "{not_elf}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn hanging_calls_are_cut_off() {
    let limit = Duration::from_millis(50);
    let error = run_blocking("hang", limit, || {
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    })
    .await
    .unwrap_err();
    assert_eq!(error.kind, vk_abi::ErrorKind::Unavailable);
    assert_eq!(
        error.message,
        "provider call hang did not answer within 0.05s"
    );
}

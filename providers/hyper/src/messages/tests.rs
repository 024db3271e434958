use super::*;

#[test]
fn a_message_is_the_end_of_its_file_and_goes_with_its_pod() {
    let root = std::env::temp_dir().join(format!("vk-messages-test-{}", std::process::id()));
    let files = MessageFiles::at(root.clone());
    let dir = root.join("uid");
    fs::create_dir_all(&dir).unwrap();
    assert_eq!(files.read("uid", "app"), None, "no file");
    fs::write(dir.join("app"), b"").unwrap();
    assert_eq!(files.read("uid", "app"), None, "nothing written");
    let long = format!("{}{}", "x".repeat(5000), "the end");
    fs::write(dir.join("app"), &long).unwrap();
    let message = files.read("uid", "app").unwrap();
    assert_eq!(message.len(), 4096);
    assert!(message.ends_with("the end"));
    files.clear("uid", "app");
    assert_eq!(files.read("uid", "app"), None);
    files.remove("uid");
    assert!(!dir.exists());
    fs::remove_dir_all(&root).unwrap();
}

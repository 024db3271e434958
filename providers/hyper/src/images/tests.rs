use super::*;

fn login(server: &str) -> RegistryCredential {
    RegistryCredential {
        server: server.into(),
        username: "u".into(),
        password: "p".into(),
    }
}

#[test]
fn registries_of_image_names() {
    assert_eq!(registry_of("busybox"), "docker.io");
    assert_eq!(registry_of("library/busybox:1"), "docker.io");
    assert_eq!(registry_of("quay.io/org/app@sha256:ab"), "quay.io");
    assert_eq!(registry_of("registry:5000/app"), "registry:5000");
    assert_eq!(registry_of("localhost/vk-busybox"), "localhost");
}

#[test]
fn the_login_of_the_images_registry_is_used() {
    let logins = [login("https://index.docker.io/v1/"), login("registry:5000")];
    assert_eq!(
        login_for("busybox", &logins).unwrap().server,
        "https://index.docker.io/v1/"
    );
    assert_eq!(
        login_for("registry:5000/app:1", &logins).unwrap().server,
        "registry:5000"
    );
    assert!(login_for("quay.io/app", &logins).is_none());
}

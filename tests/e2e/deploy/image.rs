//! The image matches what the manifests expect.

use super::*;

/// The Dockerfile cannot be built here (no image can be pulled), so what the manifests rely
/// on is read from it: a release build of the binary, a non-root user matching the pods',
/// the two ports, and a health check that needs no shell.
#[test]
pub(super) fn the_image_matches_what_the_manifests_expect() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile"))
            .expect("deploy/Dockerfile");
    let joined = dockerfile.replace("\\\n", " ");
    let instructions: Vec<(&str, &str)> = joined
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(char::is_whitespace))
        .collect();
    let stages = instructions.iter().filter(|(op, _)| *op == "FROM").count();
    assert!(stages >= 2, "a multi-stage build");
    let runtime: Vec<_> = instructions
        .iter()
        .rev()
        .take_while(|(op, _)| *op != "FROM")
        .collect();
    let build = instructions
        .iter()
        .find(|(op, _)| *op == "RUN")
        .expect("a build step")
        .1;
    assert!(
        build.contains("cargo build --release --locked -p pasarela-server"),
        "{build}"
    );

    let manifests = Manifests::of("prod");
    let deployment = manifests.of_service("Deployment", ServiceName::Bureau);
    let config = pod_config(&manifests, deployment);
    let pod_user = int(&deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]);
    let user = runtime
        .iter()
        .find(|(op, _)| *op == "USER")
        .expect("a USER")
        .1;
    assert_eq!(
        user.split(':').next(),
        Some(pod_user.to_string().as_str()),
        "image and pod agree on the user"
    );
    assert_ne!(pod_user, 0, "not root");

    let exposed = runtime
        .iter()
        .find(|(op, _)| *op == "EXPOSE")
        .expect("EXPOSE")
        .1;
    let admin = config.admin_listen.expect("admin port").port();
    for port in [config.listen.port(), admin] {
        assert!(
            exposed.split_whitespace().any(|p| p == port.to_string()),
            "port {port} in {exposed}"
        );
    }
    let health = runtime
        .iter()
        .find(|(op, _)| *op == "HEALTHCHECK")
        .expect("a HEALTHCHECK")
        .1;
    assert!(
        health.contains("\"health\"") && health.contains(&format!(":{admin}\"")),
        "the image's health check asks `pasarela health` on the admin port: {health}"
    );
}

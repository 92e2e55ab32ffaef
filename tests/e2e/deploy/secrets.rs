//! Credentials come only from Secret volumes; the documented Secret table is what the pods read.

use super::*;

/// `security.client_secret` as `PASARELA_SECURITY__CLIENT_SECRET`.
pub(super) fn variable_of(key: &str) -> String {
    format!("PASARELA_{}", key.to_uppercase().replace('.', "__"))
}

#[test]
pub(super) fn credentials_come_only_from_secret_volumes_that_prod_leaves_to_the_platform_team() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        // The pods' Secret values: dev's own, which stand in for prod's too.
        let secret_values: Vec<String> = manifests
            .secrets
            .values()
            .flatten()
            .filter_map(|(_, encoded)| String::from_utf8(secret_bytes(encoded.as_str()?)).ok())
            .collect();
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            let container = pasarela_container(deployment);
            let context = format!("{overlay} {service:?}");
            for secret in referenced_secrets(deployment) {
                let present = manifests.named("Secret", &secret).is_some();
                // dev generates obviously fake values; prod names Secrets created out of band.
                assert_eq!(present, overlay == "dev", "{context}: Secret {secret}");
            }

            // pod_variables refuses any variable whose value is not written out (secretKeyRef).
            let variables = pod_variables(&manifests, container);
            let file = config_file(&manifests, deployment);
            let texts = variables.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            for (name, value) in texts.chain([("the config file", file)]) {
                for secret in &secret_values {
                    assert!(
                        !value.contains(secret.as_str()),
                        "{context}: a Secret's value is in {name}"
                    );
                }
            }
            let toml = figment::Figment::from(Toml::string(file));
            let section = component(service).replace('-', "_");
            for key in CREDENTIALS {
                let variable = variable_of(key);
                assert!(
                    !variables.contains_key(&variable),
                    "{context}: {variable} in the environment"
                );
                assert!(
                    toml.find_value(key).is_err(),
                    "{context}: {key} in the config file"
                );
                let own = key.starts_with(&format!("{section}."));
                let from_file = variables.contains_key(&format!("{variable}{FROM_FILE}"));
                assert!(!own || from_file, "{context}: {key} is read from a file");
            }

            let root = tempfile::tempdir().expect("temp dir");
            let mounts = mount_secrets(&manifests, deployment, container, root.path());
            for (name, path) in variables.iter().filter(|(n, _)| n.ends_with(FROM_FILE)) {
                let mount = container["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| {
                        m["mountPath"]
                            .as_str()
                            .is_some_and(|dir| path.starts_with(&format!("{dir}/")))
                    })
                    .unwrap_or_else(|| panic!("{context}: {name}={path} is in no mount"));
                assert_eq!(
                    mount["readOnly"], true,
                    "{context}: {path} is mounted read-only"
                );
                let volume = volume(deployment, mount["name"].as_str().expect("mount name"));
                assert!(
                    volume["secret"]["secretName"].is_string(),
                    "{context}: {path} is a Secret's"
                );
                let local = mounts.local(path).expect("a Secret mount");
                assert!(
                    local.is_file(),
                    "{context}: the Secret has the key of {path}"
                );
            }
        }
    }
}

/// One row of the Secret table in `docs/deploy.md` whose file a `*_FROM_FILE` variable
/// names.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct DocumentedFile {
    secret: String,
    key: String,
    path: String,
    variable: String,
}

pub(super) fn documented_files() -> BTreeSet<DocumentedFile> {
    // The first code literal of a cell: `pasarela-dev-auth` (dev).
    let first = |cell: &str| cell.split('`').nth(1).map(str::to_owned);
    deploy_doc()
        .lines()
        .filter(|line| line.starts_with("| `pasarela-"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let variable = literal(cells.get(4)?)?;
            variable.ends_with(FROM_FILE).then(|| DocumentedFile {
                secret: first(cells[1]).expect("a Secret"),
                key: literal(cells[2]).expect("a key"),
                path: literal(cells[3]).expect("a path"),
                variable,
            })
        })
        .collect()
}

/// What the `*_FROM_FILE` variables of every pasarela pod of every overlay read, as the
/// Secret table of the docs spells it.
pub(super) fn files_the_pods_read() -> BTreeSet<DocumentedFile> {
    let mut files = BTreeSet::new();
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            let container = pasarela_container(deployment);
            let variables = pod_variables(&manifests, container);
            for (variable, path) in variables
                .into_iter()
                .filter(|(n, _)| n.ends_with(FROM_FILE))
            {
                let (dir, key) = path.rsplit_once('/').expect("a file path");
                let mount = container["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| m["mountPath"] == dir)
                    .unwrap_or_else(|| panic!("{overlay}: {variable}={path} is in no mount"));
                let volume = volume(deployment, mount["name"].as_str().expect("mount name"));
                let secret = volume["secret"]["secretName"].as_str().expect("a Secret");
                files.insert(DocumentedFile {
                    secret: unhashed(secret).to_owned(),
                    key: key.to_owned(),
                    path: path.clone(),
                    variable,
                });
            }
        }
    }
    files
}

#[test]
pub(super) fn the_secret_table_is_what_the_pods_read_and_covers_every_secret_key() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    let documented = documented_files();
    assert_eq!(
        documented,
        files_the_pods_read(),
        "docs/deploy.md's Secret table against the rendered pods"
    );
    for key in CREDENTIALS {
        let variable = format!("{}{FROM_FILE}", variable_of(key));
        assert!(
            documented.iter().any(|row| row.variable == variable),
            "{key} has its Secret file documented"
        );
    }
}

/// The Secrets the pod mounts.
pub(super) fn referenced_secrets(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["secret"]["secretName"].as_str())
        .map(str::to_owned)
        .collect()
}

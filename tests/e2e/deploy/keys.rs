//! Every documented configuration key is accepted under its variable.

use super::*;

/// One row of the key table in `docs/deploy.md`.
pub(super) struct DocumentedKey {
    key: String,
    variable: String,
    /// The default, when the cell is one literal (`5m`, `true`, `["a"]`).
    default: Option<String>,
}

pub(super) fn deploy_doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/deploy.md"))
        .expect("docs/deploy.md")
}

/// A table cell that is one code literal (`5m`), without its backticks.
pub(super) fn literal(cell: &str) -> Option<String> {
    let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
    (!inner.contains('`')).then(|| inner.to_owned())
}

/// The key table rows (`*_FROM_FILE` rows belong to the Secret table).
pub(super) fn documented_keys() -> Vec<DocumentedKey> {
    deploy_doc()
        .lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let variable = literal(cells.get(2)?)?;
            let key = variable.starts_with("PASARELA_") && !variable.ends_with(FROM_FILE);
            key.then(|| DocumentedKey {
                key: literal(cells[1]).expect("a key"),
                variable,
                default: literal(cells[3]),
            })
        })
        .collect()
}

/// `<provider>` rows stand for each provider's section.
pub(super) fn expand(documented: &DocumentedKey) -> Vec<(String, String)> {
    const PROVIDERS: [&str; 3] = ["security", "bureau", "recurring_payments"];
    if documented.key.contains("<provider>") {
        PROVIDERS
            .iter()
            .map(|p| {
                let upper = p.to_uppercase();
                (
                    documented.key.replace("<provider>", p),
                    documented.variable.replace("<PROVIDER>", &upper),
                )
            })
            .collect()
    } else {
        vec![(documented.key.clone(), documented.variable.clone())]
    }
}

/// Sections that exist only with some keys set: `tls` needs its certificate and key, a
/// budget its rate and its burst.
pub(super) const SECTION_COMPANIONS: [(&str, &[(&str, &str)]); 5] = [
    (
        "tls.",
        &[
            ("PASARELA_TLS__CERT_FILE", "tls.crt"),
            ("PASARELA_TLS__KEY_FILE", "tls.key"),
        ],
    ),
    (
        "auth.unauthenticated_per_peer.",
        &[
            ("PASARELA_AUTH__UNAUTHENTICATED_PER_PEER__PER_SECOND", "10"),
            ("PASARELA_AUTH__UNAUTHENTICATED_PER_PEER__BURST", "100"),
        ],
    ),
    (
        "auth.exempt_per_peer.",
        &[
            ("PASARELA_AUTH__EXEMPT_PER_PEER__PER_SECOND", "20"),
            ("PASARELA_AUTH__EXEMPT_PER_PEER__BURST", "50"),
        ],
    ),
    (
        "auth.secret_attempts.",
        &[
            ("PASARELA_AUTH__SECRET_ATTEMPTS__PER_SECOND", "0.0167"),
            ("PASARELA_AUTH__SECRET_ATTEMPTS__BURST", "10"),
        ],
    ),
    (
        "security.token.",
        &[(
            "PASARELA_SECURITY__TOKEN__URL",
            "https://bank.example/oauth2/token",
        )],
    ),
];

#[test]
pub(super) fn every_documented_key_is_accepted_under_its_variable() {
    let documented = documented_keys();
    assert!(
        documented.len() > 60,
        "the key table is found: {} rows",
        documented.len()
    );
    // The least configuration that loads: each service's required keys.
    let required = BTreeMap::from(
        [
            ("PASARELA_SECURITY__BASE_URL", "https://bcs.example"),
            ("PASARELA_SECURITY__CLIENT_ID", "id"),
            ("PASARELA_SECURITY__CLIENT_SECRET", "secret"),
            ("PASARELA_BUREAU__BASE_URL", "https://kiban.example"),
            ("PASARELA_BUREAU__API_KEY", "key"),
            (
                "PASARELA_RECURRING_PAYMENTS__BASE_URL",
                "https://daviplata.example",
            ),
            ("PASARELA_RECURRING_PAYMENTS__CLIENT_ID", "id"),
            ("PASARELA_RECURRING_PAYMENTS__CLIENT_SECRET", "secret"),
            (
                "PASARELA_RECURRING_PAYMENTS__PAYMENT_PROVIDER_ID",
                "\"00000001\"",
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    Config::load_over(Serialized::defaults(nest(&required)), None)
        .expect("the least configuration");
    for row in &documented {
        for (key, variable) in expand(row) {
            if key.contains('<') {
                continue;
            }
            let spelled = format!("PASARELA_{}", key.to_uppercase().replace('.', "__"));
            assert_eq!(variable, spelled, "the variable of {key}");
            let Some(default) = &row.default else {
                continue;
            };
            let mut variables = required.clone();
            for (prefix, companions) in SECTION_COMPANIONS {
                if key.starts_with(prefix) {
                    variables.extend(
                        companions
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
                    );
                }
            }
            variables.insert(variable.clone(), default.clone());
            if let Err(e) = Config::load_over(Serialized::defaults(nest(&variables)), None) {
                panic!("{variable}={default} (documented default of {key}) is refused: {e:#}");
            }
        }
    }
}

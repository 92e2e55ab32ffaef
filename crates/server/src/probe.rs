//! `pasarela probe`: run from a bank's own network, with the usual configuration (URLs and
//! credentials), against the real providers' sandboxes. Each check asks a provider the same
//! harmless question in each reading of its spec and reports what it did, the setting that
//! matches it, and whether the configuration has that setting (docs/spec-decisions.md).

use pasarela::common::v1::{DocumentType, Identification};
use pasarela::recurring_payments::v1::{Commerce, Wallet};
use pasarela_provider::probe::Finding;
use pasarela_recurring_payments::probe::LabAccount;

use crate::config::{Config, ServiceName};

/// Every harmless check of every enabled service that has one; given a lab account, also
/// the checks that move money in Daviplata's lab.
pub async fn findings(config: &Config, lab: Option<&LabAccount>) -> anyhow::Result<Vec<Finding>> {
    let payments_enabled = config
        .recurring_payments
        .as_ref()
        .filter(|_| config.services.contains(&ServiceName::RecurringPayments));
    if lab.is_some() {
        // Refused before any check sends anything.
        let payments = payments_enabled.ok_or_else(|| {
            anyhow::anyhow!("the money-moving checks are Daviplata's: enable recurring-payments")
        })?;
        pasarela_recurring_payments::probe::ensure_lab(payments)?;
    }
    let mut all = Vec::new();
    let enabled = |name| config.services.contains(&name);
    if let Some(security) = config
        .security
        .as_ref()
        .filter(|_| enabled(ServiceName::Security))
    {
        all.extend(pasarela_security::probe::probe(security).await?);
    }
    if let Some(payments) = payments_enabled {
        all.extend(pasarela_recurring_payments::probe::probe(payments).await?);
        if let Some(lab) = lab {
            all.extend(
                pasarela_recurring_payments::probe::probe_moving_money(payments, lab).await?,
            );
        }
    }
    Ok(all)
}

/// The lab account of `--lab-wallet TYPE:NUMBER:PHONE` and `--lab-commerce ID[:NAME[:CATEGORY]]`.
pub fn lab_account(
    wallet: &str,
    commerce: &str,
    amount_minor_units: i64,
) -> anyhow::Result<LabAccount> {
    let [kind, number, phone] = wallet.split(':').collect::<Vec<_>>()[..] else {
        anyhow::bail!("--lab-wallet is TYPE:NUMBER:PHONE, e.g. CC:1000000001:3000000001");
    };
    let kind = DocumentType::from_str_name(&format!("DOCUMENT_TYPE_{}", kind.to_ascii_uppercase()))
        .ok_or_else(|| anyhow::anyhow!("--lab-wallet: {kind} is no document type (CC, CE, TI)"))?;
    let mut parts = commerce.splitn(3, ':').map(str::to_owned);
    let commerce = Commerce {
        commerce_id: parts.next().unwrap_or_default(),
        commerce_name: parts.next().unwrap_or_default(),
        category: parts.next().unwrap_or_default(),
    };
    anyhow::ensure!(amount_minor_units > 0, "--lab-amount must be positive");
    Ok(LabAccount {
        commerce,
        wallet: Wallet {
            holder: Some(Identification {
                r#type: kind.into(),
                number: number.to_owned(),
            }),
            product_code: String::new(),
            product_number: phone.to_owned(),
        },
        amount_minor_units,
    })
}

/// The findings as a table, one check a row.
pub fn table(findings: &[Finding]) -> String {
    let header = [
        "check",
        "the provider",
        "setting that matches",
        "configured",
        "matches",
    ];
    let rows: Vec<[String; 5]> = findings
        .iter()
        .map(|finding| {
            let matching = if finding.matching.is_empty() {
                "cannot tell".to_owned()
            } else {
                format!("{} = {}", finding.key, finding.matching.join(" or "))
            };
            let matches = match finding.matches() {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "?",
            };
            [
                finding.check.to_owned(),
                finding.observed.clone(),
                matching,
                finding.configured.clone(),
                matches.to_owned(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].len())
                .chain([header[column].len()])
                .max()
                .unwrap_or_default()
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use pasarela_provider::probe::{Taken, finding};

    #[test]
    fn a_lab_account_is_read_from_its_flags() {
        let lab = lab_account("cc:1000000001:3000000001", "0987654321:La Pradera", 100)
            .expect("an account");
        let holder = lab.wallet.holder.expect("a holder");
        assert_eq!(holder.r#type(), DocumentType::Cc);
        assert_eq!(holder.number, "1000000001");
        assert_eq!(lab.wallet.product_number, "3000000001");
        assert_eq!(lab.commerce.commerce_id, "0987654321");
        assert_eq!(lab.commerce.commerce_name, "La Pradera");
        assert!(lab_account("CC:1000000001", "1", 100).is_err());
        assert!(lab_account("XX:1:3000000001", "1", 100).is_err());
        assert!(lab_account("CC:1:3000000001", "1", 0).is_err());
    }

    #[test]
    fn the_table_names_each_check_its_matching_setting_and_the_verdict() {
        let findings = [
            finding(
                "S14 query names",
                "security.holds_query",
                "table".into(),
                &[("table", Taken::Refused), ("camel", Taken::Read)],
            ),
            finding(
                "header",
                "k",
                "a".into(),
                &[("a", Taken::Unknown), ("b", Taken::Read)],
            ),
        ];
        let table = table(&findings);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("check"));
        assert!(lines[1].contains("security.holds_query = camel") && lines[1].ends_with("NO"));
        assert!(lines[2].contains("cannot tell") && lines[2].ends_with('?'));
    }
}

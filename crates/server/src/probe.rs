//! `pasarela probe`: run from a bank's own network, with the usual configuration (URLs and
//! credentials), against the real providers' sandboxes. Each check asks a provider the same
//! harmless question in each reading of its spec and reports what it did, the setting that
//! matches it, and whether the configuration has that setting (docs/spec-decisions.md).

use pasarela_provider::probe::Finding;

use crate::config::{Config, ServiceName};

/// Every check of every enabled service that has one.
pub async fn findings(config: &Config) -> anyhow::Result<Vec<Finding>> {
    let mut all = Vec::new();
    let enabled = |name| config.services.contains(&name);
    if let Some(security) = config
        .security
        .as_ref()
        .filter(|_| enabled(ServiceName::Security))
    {
        all.extend(pasarela_security::probe::probe(security).await?);
    }
    let payments = config.recurring_payments.as_ref();
    if let Some(payments) = payments.filter(|_| enabled(ServiceName::RecurringPayments)) {
        all.extend(pasarela_recurring_payments::probe::probe(payments).await?);
    }
    Ok(all)
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

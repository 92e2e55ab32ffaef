//! What `pasarela probe` reports: for each reading of a spec a provider can play, what the
//! provider did when asked both ways, the setting that matches it, and whether this
//! configuration has it.

/// One check of one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was checked ("S14 query names").
    pub check: &'static str,
    /// The configuration key the check is about.
    pub key: &'static str,
    /// What the provider did, in words ("table: read; camel: refused").
    pub observed: String,
    /// The settings that work with this provider: one reading, both (it reads either), or
    /// none (the check could not tell: credentials refused, provider down).
    pub matching: Vec<String>,
    /// The configured setting.
    pub configured: String,
}

impl Finding {
    /// Whether the configured setting works with this provider; `None` when the check
    /// could not tell.
    pub fn matches(&self) -> Option<bool> {
        (!self.matching.is_empty()).then(|| self.matching.contains(&self.configured))
    }
}

/// How a provider took one way of asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// It read the request (an answer, or a refusal of its content).
    Read,
    /// It refused the request as unreadable, or its sender as unknown.
    Refused,
    /// Nothing could be learnt (the provider down, a timeout).
    Unknown,
}

/// What a provider's refusal says of the way a request was asked: refused unread when its
/// reason is one of `unread` (a request malformed, no resource at that path), nothing when
/// it is not the provider's own (`domain`: pasarela refused before sending), the provider
/// down or pasarela's credentials refused, and read otherwise (a refusal of its content).
pub fn taken(status: &tonic::Status, domain: &str, unread: &[&str]) -> Taken {
    use tonic_types::StatusExt as _;
    let details = status.get_error_details();
    let Some(info) = details.error_info().filter(|info| info.domain == domain) else {
        return Taken::Unknown;
    };
    let reason = info.reason.as_str();
    if unread.contains(&reason) {
        Taken::Refused
    } else if matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
    ) || reason == crate::reasons::PROVIDER_AUTH_FAILED
    {
        Taken::Unknown
    } else {
        Taken::Read
    }
}

/// The finding of a check that asked once per reading.
pub fn finding(
    check: &'static str,
    key: &'static str,
    configured: String,
    outcomes: &[(&str, Taken)],
) -> Finding {
    let observed = outcomes
        .iter()
        .map(|(reading, taken)| {
            let word = match taken {
                Taken::Read => "read",
                Taken::Refused => "refused",
                Taken::Unknown => "no answer",
            };
            format!("{reading}: {word}")
        })
        .collect::<Vec<_>>()
        .join("; ");
    let conclusive = outcomes.iter().all(|(_, taken)| *taken != Taken::Unknown)
        && outcomes.iter().any(|(_, taken)| *taken == Taken::Read);
    let matching = outcomes
        .iter()
        .filter(|(_, taken)| conclusive && *taken == Taken::Read)
        .map(|(reading, _)| (*reading).to_owned())
        .collect();
    Finding {
        check,
        key,
        observed,
        matching,
        configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_names_the_readings_that_work_and_whether_the_setting_is_one() {
        let one = finding(
            "c",
            "k",
            "a".into(),
            &[("a", Taken::Refused), ("b", Taken::Read)],
        );
        assert_eq!(one.matching, ["b"]);
        assert_eq!(one.matches(), Some(false));
        assert_eq!(one.observed, "a: refused; b: read");
        let either = finding(
            "c",
            "k",
            "a".into(),
            &[("a", Taken::Read), ("b", Taken::Read)],
        );
        assert_eq!(either.matches(), Some(true));
        let unknown = finding(
            "c",
            "k",
            "a".into(),
            &[("a", Taken::Read), ("b", Taken::Unknown)],
        );
        assert_eq!(unknown.matches(), None);
        let neither = finding(
            "c",
            "k",
            "a".into(),
            &[("a", Taken::Refused), ("b", Taken::Refused)],
        );
        assert_eq!(
            neither.matches(),
            None,
            "nothing read: credentials, not the reading"
        );
    }
}

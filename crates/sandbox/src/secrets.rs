//! The secrets an emulated provider accepts, changed while it runs as a provider's console
//! rotates them: the new one is added beside the old, then the old one is withdrawn
//! (`PUT /secrets/{provider}` on the admin listener), so that tests can prove a rotated
//! credential reaches pasarela without a restart.

use std::sync::{Arc, PoisonError, RwLock};

/// Every secret accepted now; clones share them.
#[derive(Clone, Debug)]
pub struct Accepted {
    values: Arc<RwLock<Vec<String>>>,
}

impl Accepted {
    pub fn new(value: String) -> Self {
        Self {
            values: Arc::new(RwLock::new(vec![value])),
        }
    }

    pub fn accepts(&self, given: &str) -> bool {
        self.values
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|value| value == given)
    }

    /// Accepts `values` from now on, and nothing else; none is refused (a provider always
    /// holds a secret).
    pub fn replace(&self, values: Vec<String>) -> Result<(), &'static str> {
        if values.is_empty() || values.iter().any(String::is_empty) {
            return Err("a provider accepts at least one non-empty secret");
        }
        *self.values.write().unwrap_or_else(PoisonError::into_inner) = values;
        Ok(())
    }
}

/// The rotatable secret of each emulator.
#[derive(Clone, Debug)]
pub struct Secrets {
    /// Banco Caja Social's client secret (headers and the token endpoint).
    pub bcs: Accepted,
    /// Kiban's API key.
    pub kiban: Accepted,
    /// The secret of Daviplata's main client.
    pub daviplata: Accepted,
}

impl Secrets {
    pub fn of(&self, provider: &str) -> Option<&Accepted> {
        match provider {
            "bcs" => Some(&self.bcs),
            "kiban" => Some(&self.kiban),
            "daviplata" => Some(&self.daviplata),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_adds_then_withdraws() {
        let accepted = Accepted::new("old".into());
        let shared = accepted.clone();
        assert!(accepted.accepts("old") && !accepted.accepts("new"));
        shared.replace(vec!["old".into(), "new".into()]).unwrap();
        assert!(accepted.accepts("old") && accepted.accepts("new"));
        shared.replace(vec!["new".into()]).unwrap();
        assert!(!accepted.accepts("old") && accepted.accepts("new"));
        assert!(shared.replace(Vec::new()).is_err());
        assert!(accepted.accepts("new"));
    }
}

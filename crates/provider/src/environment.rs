//! Which of a provider's environments a base URL is: its production, or the sandbox (lab)
//! it runs for integrators. Production is the default: whatever only a sandbox may see
//! (test cases, money-moving probes) must be asked for by name.

use serde::Deserialize;

/// The provider environment pasarela talks to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Real customers and real money.
    #[default]
    Production,
    /// The provider's sandbox or lab: test data only.
    Sandbox,
}

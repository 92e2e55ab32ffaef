//! The bank test's history and its checker, after Jepsen's bank workload: what every key
//! was answered, what the providers' own ledgers say was executed, and what pasarela lists
//! as unknown; the checker names every way money could have moved wrongly.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The money-moving operations of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MoneyOp {
    /// D4, `ChargeSubscription`.
    Charge,
    /// S18, `WithdrawWithOtp`.
    Withdrawal,
}

/// One answer a caller got under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Success: the provider's approval and transaction id.
    Ok {
        approval: String,
        transaction: String,
    },
    /// A final refusal (the provider did not act, and says so for good).
    Refused { reason: String },
    /// Anything else: unknown, held, unavailable, timed out, a replica gone.
    Unsettled { reason: String },
}

/// Everything one key was answered, in order.
#[derive(Debug, Clone)]
pub struct KeyHistory {
    pub op: MoneyOp,
    /// What the request carried that the provider's ledger records (Daviplata's
    /// `invoiceId`, the bank's `trnRqUID`): how an execution is traced to its key.
    pub reference: String,
    pub answers: Vec<Answer>,
}

/// One operation a provider's ledger says it executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub op: MoneyOp,
    pub reference: String,
    pub transaction: String,
    pub approval: String,
}

/// A whole run.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub keys: Vec<KeyHistory>,
    pub executions: Vec<Execution>,
    /// Provider transaction ids pasarela lists as unknown outcomes at the end.
    pub listed_unknown: BTreeSet<String>,
}

/// A way money moved wrongly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Violation {
    /// A key executed more than once.
    ExecutedTwice {
        reference: String,
        executions: usize,
    },
    /// A key answered OK with an approval no execution of it carries.
    FalseOk { reference: String, approval: String },
    /// An execution that no caller was told of and pasarela does not list as unknown.
    Lost {
        reference: String,
        transaction: String,
    },
    /// A key answered with a final refusal although the provider executed it.
    FalseRefusal { reference: String },
    /// An execution no key of the workload asked for.
    Stray { reference: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Every violation of `history`, none when money moved at most once per key and nothing
/// was lost.
pub fn check(history: &History) -> Vec<Violation> {
    let mut by_reference: BTreeMap<(MoneyOp, &str), Vec<&Execution>> = BTreeMap::new();
    for execution in &history.executions {
        by_reference
            .entry((execution.op, execution.reference.as_str()))
            .or_default()
            .push(execution);
    }
    let mut violations = Vec::new();
    let mut asked = BTreeSet::new();
    for key in &history.keys {
        let reference = key.reference.clone();
        asked.insert((key.op, key.reference.as_str()));
        let executed = by_reference
            .get(&(key.op, key.reference.as_str()))
            .cloned()
            .unwrap_or_default();
        if executed.len() > 1 {
            violations.push(Violation::ExecutedTwice {
                reference: reference.clone(),
                executions: executed.len(),
            });
        }
        let mut told = false;
        for answer in &key.answers {
            match answer {
                Answer::Ok {
                    approval,
                    transaction,
                } => {
                    told = true;
                    let matches = executed
                        .iter()
                        .filter(|e| e.approval == *approval && e.transaction == *transaction)
                        .count();
                    if matches != 1 {
                        violations.push(Violation::FalseOk {
                            reference: reference.clone(),
                            approval: approval.clone(),
                        });
                    }
                }
                Answer::Refused { .. } if !executed.is_empty() => {
                    violations.push(Violation::FalseRefusal {
                        reference: reference.clone(),
                    });
                }
                Answer::Refused { .. } | Answer::Unsettled { .. } => {}
            }
        }
        for execution in executed {
            if !told && !history.listed_unknown.contains(&execution.transaction) {
                violations.push(Violation::Lost {
                    reference: reference.clone(),
                    transaction: execution.transaction.clone(),
                });
            }
        }
    }
    for execution in &history.executions {
        if !asked.contains(&(execution.op, execution.reference.as_str())) {
            violations.push(Violation::Stray {
                reference: execution.reference.clone(),
            });
        }
    }
    violations.sort();
    violations.dedup();
    violations
}

/// How a run's keys ended, by operation: OK, refused, or neither (unknown, held).
pub fn figures(history: &History) -> BTreeMap<(MoneyOp, &'static str), usize> {
    let mut figures = BTreeMap::new();
    for key in &history.keys {
        let ended = match key.answers.last() {
            _ if key.answers.iter().any(|a| matches!(a, Answer::Ok { .. })) => "ok",
            Some(Answer::Refused { .. }) => "refused",
            _ => "unknown",
        };
        *figures.entry((key.op, ended)).or_default() += 1;
    }
    for execution in &history.executions {
        *figures.entry((execution.op, "executed")).or_default() += 1;
    }
    figures
}

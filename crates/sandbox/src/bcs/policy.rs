//! The bank's password policy as data: the rules a new password must pass, each with its
//! error row (1008-1020), and the checks of the configured policy itself (1024-1042).

use secrecy::{ExposeSecret, SecretString};

use super::envelope::{self, Fault};
use super::fixtures::PasswordPolicy;

/// Every row of the policy tables is a 400 of type OUD.
const fn row(code: &'static str, desc: &'static str) -> Fault {
    envelope::row(400, code, "OUD", desc)
}

/// A proposed password and what it is compared with.
pub(crate) struct Candidate<'a> {
    pub password: &'a str,
    pub ident_serial_num: &'a str,
    pub current: Option<&'a SecretString>,
    pub history: &'a [SecretString],
    pub policy: &'a PasswordPolicy,
}

/// A rule is broken when its predicate answers `true`; the first broken rule is answered.
type Rule = (Fault, fn(&Candidate) -> bool);

/// In the order the bank evaluates them: form first, then reuse.
const RULES: &[Rule] = &[
    (
        row(
            "1020",
            "La cantidad de caracteres de la clave no concuerda con la establecida en la politica",
        ),
        |c| {
            let len = c.password.chars().count();
            len < c.policy.min_length || len > c.policy.max_length
        },
    ),
    (
        row("1008", "La clave es igual al numero de identificacion"),
        |c| c.password == c.ident_serial_num,
    ),
    (
        row("1009", "La clave tiene todos los caracteres repetidos"),
        |c| {
            let mut chars = c.password.chars();
            chars
                .next()
                .is_some_and(|first| chars.all(|ch| ch == first))
        },
    ),
    (
        row("1010", "La clave tiene caracteres especiales y/o espacios"),
        |c| {
            c.password
                .chars()
                .any(|ch| ch.is_ascii_punctuation() || ch.is_whitespace())
        },
    ),
    (row("1015", "La clave no es alfanumerica"), |c| {
        c.password.chars().any(|ch| !ch.is_ascii_alphanumeric())
    }),
    (row("1011", "La clave empieza por el numero 0"), |c| {
        c.password.starts_with('0')
    }),
    (row("1012", "La clave contiene solo numeros"), |c| {
        c.password.chars().all(|ch| ch.is_ascii_digit())
    }),
    (row("1013", "La clave contiene solo letras"), |c| {
        c.password.chars().all(|ch| ch.is_ascii_alphabetic())
    }),
    (
        row(
            "1019",
            "La clave contiene un numero mayor de caracteres repetidos o consecutivos",
        ),
        |c| longest_run(c.password) > c.policy.max_run,
    ),
    (row("1014", "La clave es igual a la anterior"), |c| {
        c.current
            .is_some_and(|current| current.expose_secret() == c.password)
    }),
    (
        row("1018", "La clave ya existe en el historico de claves"),
        |c| {
            c.history
                .iter()
                .any(|old| old.expose_secret() == c.password)
        },
    ),
];

/// The first rule the candidate breaks.
pub(crate) fn violation(candidate: &Candidate) -> Option<Fault> {
    RULES
        .iter()
        .find(|(_, broken)| broken(candidate))
        .map(|(fault, _)| *fault)
}

/// Longest run of one repeated character, or of characters climbing or falling by one
/// ("aaaa", "1234", "dcba").
fn longest_run(password: &str) -> usize {
    let chars: Vec<u32> = password.chars().map(u32::from).collect();
    let mut longest = usize::from(!chars.is_empty());
    for step in [0i64, 1, -1] {
        let mut run = 1;
        for pair in chars.windows(2) {
            run = if i64::from(pair[1]) - i64::from(pair[0]) == step {
                run + 1
            } else {
                1
            };
            longest = longest.max(run);
        }
    }
    longest
}

/// A check of the configured policy: broken when the predicate answers `true`; the flag
/// says whether user creation (S9) reports it too, as its table lists fewer rows than S8's.
type PolicyCheck = (Fault, bool, fn(&PasswordPolicy) -> bool);

const POLICY_CHECKS: &[PolicyCheck] = &[
    (
        row(
            "1024",
            "La politica de clave cantidad de caracteres minimo y/o maximo es invalida",
        ),
        true,
        |p| p.min_length == 0 || p.max_length == 0,
    ),
    (
        row(
            "1025",
            "La cantidad de caracteres minima no puede ser mayor a la cantidad de caracteres maxima",
        ),
        true,
        |p| p.min_length > p.max_length,
    ),
    (
        row(
            "1042",
            "La politica de clave cantidad caracteres iguales es invalido",
        ),
        true,
        |p| p.max_run < 2,
    ),
    (
        row("1036", "La politica de intentos fallidos es invalida"),
        false,
        |p| p.max_failed_attempts == 0,
    ),
    (
        row("1041", "El historico de la clave es invalido"),
        false,
        |p| p.history == 0,
    ),
];

/// The first problem of the configured policy that the operation reports.
pub(crate) fn policy_problem(policy: &PasswordPolicy, creating: bool) -> Option<Fault> {
    POLICY_CHECKS
        .iter()
        .find(|(_, on_create, broken)| (!creating || *on_create) && broken(policy))
        .map(|(fault, _, _)| *fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(password: &str, current: Option<&str>, history: &[&str]) -> Option<&'static str> {
        let policy = PasswordPolicy::default();
        let current = current.map(SecretString::from);
        let history: Vec<SecretString> = history.iter().map(|h| SecretString::from(*h)).collect();
        violation(&Candidate {
            password,
            ident_serial_num: "10076410",
            current: current.as_ref(),
            history: &history,
            policy: &policy,
        })
        .map(|fault| fault.code)
    }

    #[test]
    fn each_rule_has_its_code() {
        let cases = [
            ("Ab1", Some("1020")),
            ("Abcdefgh12345678x", Some("1020")),
            ("10076410", Some("1008")),
            ("aaaaaaaa", Some("1009")),
            ("Clave 2024", Some("1010")),
            ("Clave-2024", Some("1010")),
            ("Cláve2024", Some("1015")),
            ("0Clave24x", Some("1011")),
            ("84736251", Some("1012")),
            ("Clavesol", Some("1013")),
            ("Clave1234x", Some("1019")),
            ("Claaaave1x", Some("1019")),
            ("Sol2024mar", Some("1014")),
            ("Luna2023ab", Some("1018")),
            ("Rio7Mar2x", None),
        ];
        for (password, expected) in cases {
            assert_eq!(
                code(password, Some("Sol2024mar"), &["Luna2023ab"]),
                expected,
                "{password}"
            );
        }
    }

    #[test]
    fn runs_count_repeats_and_sequences() {
        assert_eq!(longest_run(""), 0);
        assert_eq!(longest_run("a"), 1);
        assert_eq!(longest_run("xx9876y"), 4);
        assert_eq!(longest_run("ab1ab1"), 2);
    }

    #[test]
    fn broken_policies_are_reported() {
        let mut policy = PasswordPolicy::default();
        assert!(policy_problem(&policy, false).is_none());
        policy.min_length = 20;
        assert_eq!(policy_problem(&policy, true).map(|f| f.code), Some("1025"));
        policy = PasswordPolicy {
            max_failed_attempts: 0,
            ..PasswordPolicy::default()
        };
        assert_eq!(policy_problem(&policy, false).map(|f| f.code), Some("1036"));
        assert!(policy_problem(&policy, true).is_none());
    }
}

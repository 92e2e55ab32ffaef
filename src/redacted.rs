//! A `Debug` for every message that carries a secret (a password, an OTP, a card secret, a
//! challenge answer): the message in protobuf text format, read through the contracts' own
//! descriptors, with each secret field replaced. The messages are listed in build.rs,
//! which keeps prost from deriving their `Debug`.

use std::fmt;
use std::sync::LazyLock;

use prost_reflect::ReflectMessage as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};

use crate::{bureau, recurring_payments, security};

/// What a secret field's value is written as.
pub const REDACTED: &str = "<redacted>";

/// The secret fields of each message, as its proto comments mark them.
const SECRET_FIELDS: &[(&str, &[&str])] = &[
    (
        "pasarela.bureau.v1.GetPasswordExpirationRequest",
        &["password"],
    ),
    (
        "pasarela.recurring_payments.v1.RequestSubscriptionResponse",
        &["lab_otp_value"],
    ),
    (
        "pasarela.recurring_payments.v1.ActivateSubscriptionRequest",
        &["otp_value"],
    ),
    ("pasarela.security.v1.ValidateOtcRequest", &["code"]),
    (
        "pasarela.security.v1.EnrollDigitalUserRequest",
        &["password"],
    ),
    (
        "pasarela.security.v1.ChangePasswordRequest",
        &["current_password", "new_password"],
    ),
    ("pasarela.security.v1.CreateUserRequest", &["password"]),
    (
        "pasarela.security.v1.ValidateEnrollmentCardRequest",
        &["card_secret"],
    ),
    (
        "pasarela.security.v1.ValidatePasswordRecoveryRequest",
        &["card_secret"],
    ),
    (
        "pasarela.security.v1.RequestWithdrawalOtpResponse",
        &["otp"],
    ),
    ("pasarela.security.v1.ChannelAnswer", &["value"]),
    ("pasarela.security.v1.WithdrawWithOtpRequest", &["otp"]),
    ("pasarela.security.v1.QuestionAnswer", &["answer"]),
];

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).ok());

/// Writes `message` (of the proto type `name`) with its secret fields replaced; a message
/// that cannot be read through the descriptors is written as its type name alone.
fn redacted(message: &impl prost::Message, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let descriptor = POOL
        .as_ref()
        .and_then(|pool| pool.get_message_by_name(name));
    let Some(mut dynamic) = descriptor.and_then(|descriptor| {
        DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice()).ok()
    }) else {
        return f.write_str(name);
    };
    let secrets = SECRET_FIELDS
        .iter()
        .find(|(message, _)| *message == name)
        .map_or(&[][..], |(_, fields)| *fields);
    for field in secrets {
        let Some(field) = dynamic.descriptor().get_field_by_name(field) else {
            continue;
        };
        if dynamic.has_field(&field) {
            dynamic.set_field(&field, Value::String(REDACTED.to_owned()));
        }
    }
    write!(f, "{name} {{ {dynamic} }}")
}

/// The redacting `Debug` of one message type, named by its proto full name.
macro_rules! redacted_debug {
    ($($type:ty => $name:literal,)*) => {$(
        impl fmt::Debug for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                redacted(self, $name, f)
            }
        }
    )*};
}

redacted_debug! {
    bureau::v1::GetPasswordExpirationRequest => "pasarela.bureau.v1.GetPasswordExpirationRequest",
    recurring_payments::v1::RequestSubscriptionResponse => "pasarela.recurring_payments.v1.RequestSubscriptionResponse",
    recurring_payments::v1::ActivateSubscriptionRequest => "pasarela.recurring_payments.v1.ActivateSubscriptionRequest",
    security::v1::ValidateOtcRequest => "pasarela.security.v1.ValidateOtcRequest",
    security::v1::EnrollDigitalUserRequest => "pasarela.security.v1.EnrollDigitalUserRequest",
    security::v1::ChangePasswordRequest => "pasarela.security.v1.ChangePasswordRequest",
    security::v1::CreateUserRequest => "pasarela.security.v1.CreateUserRequest",
    security::v1::ValidateEnrollmentCardRequest => "pasarela.security.v1.ValidateEnrollmentCardRequest",
    security::v1::ValidatePasswordRecoveryRequest => "pasarela.security.v1.ValidatePasswordRecoveryRequest",
    security::v1::RequestWithdrawalOtpResponse => "pasarela.security.v1.RequestWithdrawalOtpResponse",
    security::v1::ChannelAnswer => "pasarela.security.v1.ChannelAnswer",
    security::v1::WithdrawWithOtpRequest => "pasarela.security.v1.WithdrawWithOtpRequest",
    security::v1::QuestionAnswer => "pasarela.security.v1.QuestionAnswer",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_and_the_rest_does() {
        let request = bureau::v1::GetPasswordExpirationRequest {
            member_code: "PM00000001".into(),
            password: "Abc12345".into(),
            test_case_id: String::new(),
        };
        let printed = format!("{request:?}");
        assert!(!printed.contains("Abc12345"), "{printed}");
        assert!(
            printed.contains("PM00000001") && printed.contains(REDACTED),
            "{printed}"
        );
        let nested = security::v1::AuthenticateChannelRequest {
            answers: vec![security::v1::ChannelQuestionAnswer {
                answers: vec![security::v1::ChannelAnswer {
                    value: "9f86d081884c7d659a2feaa0c55ad015".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let printed = format!("{nested:?}");
        assert!(!printed.contains("9f86d081"), "{printed}");
    }

    /// `(message, field)` of every field whose proto comment says it is a secret.
    fn secret_fields_of_the_contracts() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/pasarela");
        let mut found = Vec::new();
        for service in ["bureau", "recurring_payments", "security"] {
            let path = root
                .join(service)
                .join("v1")
                .join(format!("{service}.proto"));
            let text = std::fs::read_to_string(path).expect("a contract");
            let (mut message, mut comment) = (String::new(), String::new());
            for line in text.lines().map(str::trim) {
                if let Some(name) = line.strip_prefix("message ") {
                    message = format!("pasarela.{service}.v1.{}", name.trim_end_matches(" {"));
                } else if let Some(text) = line.strip_prefix("//") {
                    comment.push_str(text);
                    continue;
                } else if comment.to_lowercase().contains("secret")
                    && line.ends_with(';')
                    && line.contains(" = ")
                    && !line.starts_with("rpc ")
                {
                    let field = line.split_whitespace().rev().nth(2).unwrap_or_default();
                    found.push((message.clone(), field.to_owned()));
                }
                comment.clear();
            }
        }
        found
    }

    #[test]
    fn every_field_the_contracts_mark_secret_is_redacted() {
        let marked = secret_fields_of_the_contracts();
        assert!(marked.len() >= 14, "{marked:?}");
        for (message, field) in &marked {
            assert!(
                SECRET_FIELDS
                    .iter()
                    .any(|(name, fields)| name == message && fields.contains(&field.as_str())),
                "{message}.{field} is marked secret but not redacted"
            );
        }
    }

    #[test]
    fn every_message_with_a_secret_field_is_listed() {
        let pool = POOL.as_ref().expect("the contracts' descriptors");
        for (name, fields) in SECRET_FIELDS {
            let message = pool
                .get_message_by_name(name)
                .expect("a message of the contracts");
            for field in *fields {
                assert!(
                    message.get_field_by_name(field).is_some(),
                    "{name} has no field {field}"
                );
            }
        }
    }
}

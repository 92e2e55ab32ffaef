//! Document kinds as the providers and the tenants' end-user claims write them (`CC`,
//! `CE`, ...), read once from the contracts' enum.

use crate::common::v1::{DocumentType, Identification};

impl Identification {
    /// The document kind's short name (`CC`); `UNSPECIFIED` when unset or unknown.
    pub fn kind(&self) -> &'static str {
        let kind = DocumentType::try_from(self.r#type).unwrap_or(DocumentType::Unspecified);
        kind.as_str_name().trim_start_matches("DOCUMENT_TYPE_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_their_short_names() {
        let id = |kind: DocumentType| Identification {
            r#type: kind.into(),
            number: "1".into(),
        };
        assert_eq!(id(DocumentType::Cc).kind(), "CC");
        assert_eq!(id(DocumentType::Ni).kind(), "NI");
        assert_eq!(id(DocumentType::Unspecified).kind(), "UNSPECIFIED");
        let unknown = Identification {
            r#type: 99,
            number: "1".into(),
        };
        assert_eq!(unknown.kind(), "UNSPECIFIED");
    }
}

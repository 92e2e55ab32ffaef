//! The wire translations against the spec's examples and rules.

use super::*;
use pasarela::common::v1::{DocumentType, Identification, Money};
use serde_json::json;

fn customer() -> Option<Identification> {
    Some(Identification {
        r#type: DocumentType::Cc.into(),
        number: "1007641".into(),
    })
}

#[test]
fn secrets_reach_the_wire_body_and_nowhere_else() {
    let mut v = Violations::new();
    let outgoing = change_password(
        &pb::ChangePasswordRequest {
            customer: customer(),
            current_password: "Old2024ab".into(),
            new_password: "New2025cd".into(),
            ..Default::default()
        },
        &mut v,
    );
    assert!(v.is_empty());
    let body = outgoing.body.expect("a body");
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({
            "govIssueIdent": { "govIssueIdentType": "CC", "identSerialNum": "1007641" },
            "custPswd": { "cryptPswd": "Old2024ab" },
            "subjectPswd": { "cryptPswd": "New2025cd" },
        })
    );
}

#[test]
fn holds_are_read_whichever_field_carries_type_and_status() {
    let answer: HoldsAnswer = serde_json::from_value(json!({
        "trnSrcInfo": {
            "resultsPagesGeneric": { "totalRecords": "0002", "recordsXPage": "02" },
            "blockingInfo": [
                { "channel": "007", "type": "Unlock", "status": "Product",
                  "establishDt": "2024-05-20 11.24.21 PM",
                  "unblockingInfo": { "user": "", "branchId": "", "establishDt": "" } },
                { "channel": "015", "type": "C", "status": "S", "establishDt": "" }
            ]
        }
    }))
    .unwrap();
    let response = answer
        .into_response(Page {
            number: 1,
            size: 20,
        })
        .unwrap();
    let first = &response.holds[0];
    assert_eq!(first.r#type(), pb::HoldType::Product);
    assert_eq!(first.status(), pb::HoldStatus::Unlocked);
    assert!(first.release.is_none());
    // 23:24:21 in Bogotá is 04:24:21 UTC the next day.
    let seconds = first.hold_time.as_ref().unwrap().seconds;
    assert_eq!(seconds % 86_400, 4 * 3600 + 24 * 60 + 21);
    assert_eq!(response.holds[1].r#type(), pb::HoldType::User);
    let page = response.page.unwrap();
    assert_eq!(
        (page.total_items, page.total_pages, page.has_next_page),
        (2, 1, false)
    );
}

#[test]
fn a_page_larger_than_twenty_is_refused() {
    let mut v = Violations::new();
    let asked = pasarela::common::v1::PageRequest {
        page_size: 21,
        page_number: 2,
    };
    assert_eq!(page(&mut v, Some(&asked)), (2, 20));
    assert!(!v.is_empty());
    let mut v = Violations::new();
    assert_eq!(page(&mut v, None), (1, 20));
    assert!(v.is_empty());
}

#[test]
fn list_queries_ask_for_the_right_records() {
    let mut v = Violations::new();
    let (outgoing, page) = list_channel_holds(
        &pb::ListChannelHoldsRequest {
            customer: customer(),
            filter: pb::HoldFilter::Locked.into(),
            page: Some(pasarela::common::v1::PageRequest {
                page_size: 10,
                page_number: 3,
            }),
            ..Default::default()
        },
        (HoldsQuery::Table, RecordBase::One),
        &mut v,
    );
    assert!(v.is_empty());
    assert_eq!(
        page,
        Page {
            number: 3,
            size: 10
        }
    );
    assert_eq!(outgoing.path_id.as_deref(), Some("1007641"));
    assert_eq!(
        outgoing.query,
        [
            ("GovIssueIdentType", "CC".to_owned()),
            ("status", "Locked".to_owned()),
            ("initialRecord", "21".to_owned()),
            ("RecordsXPage", "10".to_owned()),
        ]
    );
    let (camel, _) = list_channel_holds(
        &pb::ListChannelHoldsRequest {
            customer: customer(),
            ..Default::default()
        },
        (HoldsQuery::Camel, RecordBase::Zero),
        &mut v,
    );
    let names: Vec<&str> = camel.query.iter().map(|(name, _)| *name).collect();
    // Counted from zero, the first page starts at record 0.
    assert_eq!(camel.query[2], ("initialRecord", "0".to_owned()));
    assert_eq!(
        names,
        [
            "govIssueIdentType",
            "status",
            "initialRecord",
            "recordsXPage"
        ]
    );
}

#[test]
fn challenge_answers_read_the_spec_examples() {
    let answer: ChallengeAnswer = serde_json::from_value(json!({
        "authorization": { "value": "TV", "code": null },
        "trace": { "iteration": { "value": "3" }, "retry": { "value": "1" } },
        "questionList": [{ "question": {
            "type": "SM", "id": "202410181112571944582", "value": "¿Usted tiene tarjeta débito?",
            "desc": null, "length": "4", "format": "N",
            "answerList": [
                { "answer": { "id": "A", "value": " Sí tengo tarjeta débito " } },
                { "answer": { "id": "B", "value": " No tengo tarjeta débito" } }
            ]
        }}]
    }))
    .unwrap();
    let response = pb::CreateQuestionChallengeResponse::try_from(answer).unwrap();
    assert_eq!(response.result(), pb::AuthorizationResult::QuestionsPending);
    assert_eq!(response.trace.unwrap().iteration, 3);
    assert_eq!(response.questions[0].options.len(), 2);

    let open: ChallengeAnswer = serde_json::from_value(json!({
        "authorization": { "value": "TV", "code": null },
        "questionList": [{ "question": { "type": "M", "id": "1", "value": "código",
            "answerList": [{ "answer": { "id": null, "value": null } }] } }]
    }))
    .unwrap();
    let response = pb::CreateQuestionChallengeResponse::try_from(open).unwrap();
    assert!(response.questions[0].options.is_empty());
}

#[test]
fn amounts_travel_as_whole_pesos() {
    let mut v = Violations::new();
    let outgoing = request_withdrawal_otp(
        &pb::RequestWithdrawalOtpRequest {
            customer: customer(),
            account_id: "2343454353".into(),
            amount: Some(Money {
                currency_code: "COP".into(),
                minor_units: 2_000_000,
            }),
            otc_id: "001".into(),
            ..Default::default()
        },
        &mut v,
    );
    assert!(v.is_empty());
    let body = serde_json::to_value(outgoing.body.unwrap()).unwrap();
    assert_eq!(body["xFerInfo"]["curAmt"]["amt"], 20_000);
    assert_eq!(body["otc"]["idOtc"], "001");
}

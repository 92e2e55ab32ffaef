//! Banco Caja Social's request examples have the shape of what pasarela sends, read from
//! the sandbox's request journal.

use super::*;

// ---- Banco Caja Social: request examples ------------------------------------------------------

#[tokio::test]
async fn bcs_query_examples_have_the_names_pasarela_sends() {
    let app = security::app().await;
    let mut client = security::client(&app);
    let by_alias = GetPasswordStatusRequest {
        subject: Some(Subject::UserAlias("ALIAS8985".into())),
        ..password_status()
    };
    for (rel, request) in [
        ("bcs/s1-password-status-request.txt", password_status()),
        ("bcs/s1-password-status-request-2.txt", by_alias),
    ] {
        let _ = client.get_password_status(request).await;
        let call = app.last_call("bcs", "GET", bcs_path("s1")).await;
        let (_, _, body) = text_fixture(rel);
        let url = &body[0];
        let query = url.split_once('?').expect("a query string").1;
        assert_eq!(
            query_names(call["query"].as_str().expect("query")),
            query_names(query),
            "{rel}"
        );
    }
}

#[tokio::test]
async fn bcs_request_examples_have_the_shape_pasarela_sends() {
    let app = security::app().await;
    for (op, rel) in [
        ("s12", "bcs/s12-withdrawal-otp-request.json"),
        ("s13", "bcs/s13-password-status-update-request.json"),
        ("s15", "bcs/s15-lock-unlock-channel-request.json"),
        ("s16", "bcs/s16-authentication-level-request.json"),
        ("s17", "bcs/s17-authentication-channel-request.json"),
        ("s18", "bcs/s18-retiro-otp-request.json"),
    ] {
        let _ = call_bcs(&app, op).await;
        let call = app.last_call("bcs", "POST", bcs_path(op)).await;
        assert_same_shape(&body_of(&call), &example(rel), rel);
    }
}

#[tokio::test]
async fn s19_request_examples_have_the_shape_pasarela_sends() {
    let app = security::app().await;
    let mut client = security::client(&app);
    for (rel, request) in [
        (
            "bcs/s19-create-challenge-v2-request.json",
            question_round(ChallengeRound::Initial, None),
        ),
        (
            "bcs/s19-create-challenge-v2-request-2.json",
            question_round(ChallengeRound::Answer, Some(code_answer())),
        ),
        (
            "bcs/s19-create-challenge-v2-request-3.json",
            question_round(ChallengeRound::Answer, Some(card_answer())),
        ),
    ] {
        let _ = client.create_question_challenge(request).await;
        let call = app.last_call("bcs", "POST", bcs_path("s19")).await;
        assert_same_shape(&body_of(&call), &example(rel), rel);
    }
}

#[tokio::test]
async fn an_s19_answer_may_leave_its_value_out() {
    let app = security::app().await;
    let open_option = QuestionAnswer {
        answer: String::new(),
        option_id: "B".into(),
        ..card_answer()
    };
    let _ = security::client(&app)
        .create_question_challenge(question_round(ChallengeRound::Answer, Some(open_option)))
        .await;
    let call = app.last_call("bcs", "POST", bcs_path("s19")).await;
    let answer = &body_of(&call)["questionList"][0]["question"]["answer"];
    assert_eq!(
        answer,
        &json!({ "id": "B" }),
        "the table's answer.value is optional"
    );
}

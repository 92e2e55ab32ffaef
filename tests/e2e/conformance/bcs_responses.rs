//! Banco Caja Social's response examples, served verbatim by the sandbox, arrive in the
//! proto fields.

use super::*;

// ---- Banco Caja Social: response examples --------------------------------------------------------

/// The HTTP status an example is served with: its own, else 200 (the spec prints none for
/// S14, S15, S18, S19; any 2xx is a success to pasarela).
fn success_status(rel: &str) -> u16 {
    fixture(rel).http_status.unwrap_or(200)
}

async fn serve_example(app: &TestApp, op: &str, rel: &str) {
    serve(app, op, success_status(rel), &example(rel)).await;
}

#[tokio::test]
async fn bcs_response_examples_reach_the_proto_fields() {
    let app = security::app().await;
    let mut client = security::client(&app);

    serve_example(&app, "s1", "bcs/s1-password-status-response.json").await;
    let s1 = client
        .get_password_status(password_status())
        .await
        .expect("S1")
        .into_inner();
    assert_eq!(s1.status(), PasswordStatus::Active);
    assert_eq!(s1.status_description, "Activo");
    let contact = s1.contact.expect("contact data");
    assert_eq!(
        (contact.cell_phone.as_str(), contact.email.as_str()),
        ("3175137626", "s9m3b9o7@bancocajasocial.com")
    );

    for (op, rel) in [
        ("s8", "bcs/s8-change-password-response.json"),
        ("s9", "bcs/s9-create-user-response.json"),
        ("s10", "bcs/s10-user-validation-response.json"),
        ("s11", "bcs/s11-recover-password-validation-response.json"),
        ("s15", "bcs/s15-lock-unlock-channel-response.json"),
    ] {
        serve_example(&app, op, rel).await;
        call_bcs(&app, op)
            .await
            .unwrap_or_else(|e| panic!("{rel}: {e:?}"));
    }

    serve_example(&app, "s12", "bcs/s12-withdrawal-otp-response.json").await;
    let s12 = client
        .request_withdrawal_otp(withdrawal_otp_request())
        .await
        .expect("S12")
        .into_inner();
    assert_eq!(s12.otp, "455667");

    serve_example(&app, "s13", "bcs/s13-password-status-update-response.json").await;
    let s13 = client
        .update_password_status(password_status_update())
        .await
        .expect("S13")
        .into_inner();
    assert_eq!(s13.description, "Cambio estado clave de usuario Exitosa.");
    // 2023-06-23 12:57:48.941 in Bogotá (UTC-5).
    let effective = s13.effective_time.expect("endDt");
    assert_eq!(
        (effective.seconds, effective.nanos),
        (1_687_543_068, 941_000_000)
    );

    serve_example(&app, "s16", "bcs/s16-authentication-level-response.json").await;
    let s16 = client
        .get_authentication_level(authentication_level())
        .await
        .expect("S16")
        .into_inner();
    assert_eq!(s16.level, 3);
    assert_eq!(s16.description, "CANCELACI¿¿N TARJETA CR¿¿DITO");
    assert_eq!(
        (
            s16.request_number.as_str(),
            s16.transaction_request_id.as_str()
        ),
        ("257896", "101261")
    );

    serve_example(&app, "s17", "bcs/s17-authentication-channel-response.json").await;
    let s17 = client
        .authenticate_channel(channel_round())
        .await
        .expect("S17")
        .into_inner();
    assert_eq!(s17.result(), AuthorizationResult::Authorized);
    assert_eq!(s17.authorization_value, "SI");
    assert!(
        s17.authorization_code
            .starts_with("23F3D2C7BE98187C6D8F417AE243D0DCCE2DFBF0900006API429")
    );
    assert_eq!(s17.trace, Some(trace_of(0, 0)));
    let question = &s17.questions[0];
    assert_eq!(
        (question.r#type.as_str(), question.code.as_str()),
        ("S", "202007161835353254834")
    );
    assert_eq!((question.answer_length, question.format.as_str()), (2, "N"));
    assert_eq!(
        question.options[0],
        ChannelAnswerOption {
            status_code: "A".into(),
            text: "SI".into()
        }
    );

    serve_example(&app, "s18", "bcs/s18-retiro-otp-response.json").await;
    let s18 = client
        .withdraw_with_otp(security::withdrawal("455667", "conformance-s18"))
        .await
        .expect("S18")
        .into_inner();
    assert_eq!(s18.approval_id, "224671");
    assert_eq!(
        (s18.account_id.as_str(), s18.account_type.as_str()),
        ("26500084997", "AHORROS")
    );
}

#[tokio::test]
async fn the_s14_example_lists_both_holds_whatever_its_total_says() {
    let app = security::app().await;
    serve_example(&app, "s14", "bcs/s14-consult-channel-response.json").await;
    let page = security::client(&app)
        .list_channel_holds(holds_page())
        .await
        .expect("S14")
        .into_inner();
    assert_eq!(page.holds.len(), 2);
    let info = page.page.expect("page info");
    assert_eq!(
        info.total_items, 2,
        "totalRecords \"0000\" with two records: {info:?}"
    );
    assert!(!info.has_next_page);
    let first = &page.holds[0];
    assert_eq!(
        (first.channel.as_str(), first.sub_channel.as_str()),
        ("007", "00")
    );
    // The example swaps type and status against the table: Product is the type.
    assert_eq!(
        (first.r#type(), first.status()),
        (HoldType::Product, HoldStatus::Unlocked)
    );
    assert_eq!(
        (
            first.account_id.as_str(),
            first.user.as_str(),
            first.branch_id.as_str()
        ),
        ("1354164141", "INTERNET", "321102")
    );
    // 2024-05-20 11.24.21 AM in Bogotá (UTC-5).
    assert_eq!(
        first.hold_time.as_ref().map(|t| t.seconds),
        Some(1_716_222_261)
    );
    let release = first.release.as_ref().expect("released");
    assert_eq!(release.user, "INTERNET");
    assert!(
        page.holds[1].release.is_none(),
        "an empty unblockingInfo is no release"
    );
    assert_eq!(page.holds[1].channel, "015");
}

#[tokio::test]
async fn one_odd_hold_does_not_fail_an_s14_page() {
    let app = security::app().await;
    let mut odd = example("bcs/s14-consult-channel-response.json");
    odd["trnSrcInfo"]["blockingInfo"][0]["type"] = json!("Suspended");
    odd["trnSrcInfo"]["blockingInfo"][0]["status"] = json!("Pending");
    odd["trnSrcInfo"]["blockingInfo"][1]["establishDt"] = json!("07/05/2024 08:44");
    serve(&app, "s14", 200, &odd).await;
    let page = security::client(&app)
        .list_channel_holds(holds_page())
        .await
        .expect("S14")
        .into_inner();
    assert_eq!(page.holds.len(), 2);
    assert_eq!(
        (page.holds[0].r#type(), page.holds[0].status()),
        (HoldType::Unspecified, HoldStatus::Unspecified)
    );
    assert_eq!(
        page.holds[0].channel, "007",
        "the rest of the odd hold is kept"
    );
    assert!(
        page.holds[1].hold_time.is_none(),
        "an unreadable date is left out"
    );
    assert_eq!(
        (page.holds[1].r#type(), page.holds[1].status()),
        (HoldType::Product, HoldStatus::Unlocked)
    );
}

#[tokio::test]
async fn an_unknown_s1_status_keeps_the_contact_data() {
    let app = security::app().await;
    let mut odd = example("bcs/s1-password-status-response.json");
    odd["custPswdInfo"] = json!({ "pswdStatus": "7", "desc": "Pendiente" });
    serve(&app, "s1", 200, &odd).await;
    let s1 = security::client(&app)
        .get_password_status(password_status())
        .await
        .expect("S1")
        .into_inner();
    assert_eq!(s1.status(), PasswordStatus::Unspecified);
    assert_eq!(s1.status_description, "Pendiente");
    assert_eq!(s1.contact.expect("contact").cell_phone, "3175137626");
}

#[tokio::test]
async fn s19_response_examples_reach_the_proto_fields() {
    let app = security::app().await;
    let first = s19_round(&app, "bcs/s19-create-challenge-v2-response.json").await;
    assert_eq!(first.result(), AuthorizationResult::QuestionsPending);
    assert_eq!(
        (
            first.authorization_value.as_str(),
            first.authorization_code.as_str()
        ),
        ("TV", "")
    );
    assert_eq!(first.trace, Some(trace_of(2, 1)));
    let code = &first.questions[0];
    assert_eq!(
        (code.r#type.as_str(), code.id.as_str()),
        ("M", "202410181111029014581")
    );
    assert!(
        code.text
            .starts_with("Por favor ingrese el código de 6 dígitos")
    );
    assert_eq!(
        (
            code.answer_length.as_str(),
            code.format.as_str(),
            code.help.as_str()
        ),
        ("6", "N", "")
    );
    assert!(
        code.options.is_empty(),
        "an open question's placeholder option is no option"
    );

    let second = s19_round(&app, "bcs/s19-create-challenge-v2-response-2.json").await;
    assert_eq!(second.trace, Some(trace_of(3, 1)));
    let card = &second.questions[0];
    assert_eq!(card.r#type, "SM");
    let options: Vec<(&str, &str)> = card
        .options
        .iter()
        .map(|o| (o.id.as_str(), o.text.as_str()))
        .collect();
    assert_eq!(
        options,
        [
            ("A", "Sí tengo tarjeta débito"),
            ("B", "No tengo tarjeta débito")
        ]
    );

    let third = s19_round(&app, "bcs/s19-create-challenge-v2-response-3.json").await;
    assert_eq!(third.result(), AuthorizationResult::Authorized);
    assert_eq!(
        third.authorization_code,
        "13581DA3A42EF77CA4ED35BA7BD022E8D6B480F5100090APII427032263281789 20241018111456456"
    );
    assert!(third.trace.is_none() && third.questions.is_empty());
}

/// A trace as the bank wrote it in digits: the numbers and the same text.
fn trace_of(iteration: i32, retry: i32) -> ChallengeTrace {
    ChallengeTrace {
        iteration,
        retry,
        iteration_text: iteration.to_string(),
        retry_text: retry.to_string(),
    }
}

#[tokio::test]
async fn s19_trace_values_are_text_kept_and_sent_back_as_written() {
    // S19's table: trace.*.value is a String of up to 20 characters, not a counter.
    let app = security::app().await;
    let mut body = example("bcs/s19-create-challenge-v2-response.json");
    body["trace"]["iteration"]["value"] = json!("IT-0002");
    body["trace"]["retry"]["value"] = json!("R1");
    serve(&app, "s19", 200, &body).await;
    let first = security::client(&app)
        .create_question_challenge(question_round(ChallengeRound::Initial, None))
        .await
        .expect("a trace that is no number is still an answer")
        .into_inner();
    let trace = first.trace.expect("a trace");
    assert_eq!(
        (trace.iteration_text.as_str(), trace.retry_text.as_str()),
        ("IT-0002", "R1")
    );
    assert_eq!((trace.iteration, trace.retry), (0, 0), "not numbers");

    let mut next = question_round(ChallengeRound::Answer, Some(code_answer()));
    next.trace = Some(trace);
    let _ = security::client(&app).create_question_challenge(next).await;
    let sent = body_of(&app.last_call("bcs", "POST", bcs_path("s19")).await);
    assert_eq!(sent["trace"]["iteration"]["value"], "IT-0002", "{sent}");
    assert_eq!(sent["trace"]["retry"]["value"], "R1", "{sent}");
}

/// An initial S19 round answered with the example `rel`, verbatim.
async fn s19_round(app: &TestApp, rel: &str) -> CreateQuestionChallengeResponse {
    serve_example(app, "s19", rel).await;
    security::client(app)
        .create_question_challenge(question_round(ChallengeRound::Initial, None))
        .await
        .unwrap_or_else(|e| panic!("{rel}: {e:?}"))
        .into_inner()
}

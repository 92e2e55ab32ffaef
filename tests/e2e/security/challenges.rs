//! S5, S16, S17, S19 end to end: transaction challenges, authentication levels, channel and
//! question challenge rounds.

use super::*;

// ---- S5, S16, S17, S19: challenges -----------------------------------------------------------

fn pse_data() -> Vec<TransactionData> {
    vec![
        TransactionData {
            name: "NOMBRE_COMERCIO".into(),
            value: "COLEGIO JONATHAN SWIFT".into(),
        },
        TransactionData {
            name: "CODIGO_CONVENIO".into(),
            value: "PSE".into(),
        },
    ]
}

#[tokio::test]
async fn a_transaction_challenge_v1_is_authorized_at_once() {
    let app = app().await;
    let mut client = client(&app);
    let challenge = |code: &str| CreateTransactionChallengeRequest {
        customer: cc("111111"),
        customer_type: CustomerType::Natural.into(),
        transaction_code: code.into(),
        data: pse_data(),
        amount: pesos(10_000),
        source_account: "222222".into(),
        ..Default::default()
    };
    let authorized = client
        .create_transaction_challenge(challenge("100090"))
        .await
        .expect("challenge")
        .into_inner();
    assert_eq!(authorized.result(), AuthorizationResult::Authorized);
    assert!(authorized.authorization_code.contains("100090"));

    let unknown = client
        .create_transaction_challenge(challenge("999999"))
        .await
        .unwrap_err();
    assert_error(
        &unknown,
        Code::FailedPrecondition,
        "TRANSACTION_NOT_CONFIGURED",
    );
}

#[tokio::test]
async fn the_authentication_level_of_a_transaction() {
    let app = app().await;
    let mut client = client(&app);
    let level = |transaction: &str| GetAuthenticationLevelRequest {
        customer: cc("1030"),
        adviser: cc("1025"),
        request_number: "257896".into(),
        transaction_request_id: transaction.into(),
        auth_system: "SIEBEL".into(),
        ..Default::default()
    };
    let answer = client
        .get_authentication_level(level("101261"))
        .await
        .expect("level")
        .into_inner();
    assert_eq!(answer.level, 3);
    assert_eq!(answer.request_number, "257896");
    let unknown = client
        .get_authentication_level(level("424242"))
        .await
        .unwrap_err();
    assert_error(
        &unknown,
        Code::FailedPrecondition,
        "TRANSACTION_NOT_CONFIGURED",
    );
}

fn channel_round(
    customer: &str,
    trace: Option<ChallengeTrace>,
    answered: Option<(&ChannelQuestion, &str)>,
) -> AuthenticateChannelRequest {
    AuthenticateChannelRequest {
        customer: cc(customer),
        person: Some(PersonInfo {
            first_name: "ROSA".into(),
            middle_name: "GRICELDA".into(),
            r#type: CustomerType::Natural.into(),
            ..Default::default()
        }),
        transaction_code: "API429".into(),
        transaction_request_id: "900006".into(),
        request_number: "1234".into(),
        trace,
        answers: answered
            .map(|(question, option)| {
                vec![ChannelQuestionAnswer {
                    r#type: question.r#type.clone(),
                    code: question.code.clone(),
                    text: question.text.clone(),
                    answer_length: question.answer_length,
                    format: question.format.clone(),
                    answers: vec![ChannelAnswer {
                        status_code: option.into(),
                        value: question
                            .options
                            .iter()
                            .find(|o| o.status_code == option)
                            .map(|o| o.text.clone())
                            .unwrap_or_else(|| "NO".into()),
                    }],
                    ..Default::default()
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// Opens a channel authentication for `customer` and gives `answer` to each of the two
/// question rounds that follow; answers the last round.
async fn answer_both_rounds<I: Interceptor>(
    client: &mut SecurityServiceClient<InterceptedService<Channel, I>>,
    customer: &str,
    answer: &str,
) -> AuthenticateChannelResponse {
    let mut round = client
        .authenticate_channel(channel_round(customer, None, None))
        .await
        .expect("open")
        .into_inner();
    for _ in 0..2 {
        assert_eq!(round.result(), AuthorizationResult::QuestionsPending);
        let question = round.questions[0].clone();
        round = client
            .authenticate_channel(channel_round(
                customer,
                round.trace,
                Some((&question, answer)),
            ))
            .await
            .expect("answer")
            .into_inner();
    }
    round
}

#[tokio::test]
async fn channel_authentication_rounds_reach_an_authorization_code() {
    let app = app().await;
    let round = answer_both_rounds(&mut client(&app), "51901591", "A").await;
    assert_eq!(round.result(), AuthorizationResult::Authorized);
    assert!(round.authorization_code.contains("900006"));
}

#[tokio::test]
async fn channel_authentication_is_denied_when_retries_run_out() {
    let app = app().await;
    // 111111 answers A to the first question; B is wrong, and two tries are allowed.
    let round = answer_both_rounds(&mut client(&app), "111111", "B").await;
    assert_eq!(round.result(), AuthorizationResult::Denied);
    assert!(round.authorization_code.is_empty());
}

fn question_round(
    round: ChallengeRound,
    trace: Option<ChallengeTrace>,
    answers: Vec<QuestionAnswer>,
) -> CreateQuestionChallengeRequest {
    CreateQuestionChallengeRequest {
        customer: cc("111111"),
        customer_type: CustomerType::Natural.into(),
        round: round.into(),
        transaction_code: "100090".into(),
        data: pse_data(),
        amount: pesos(10_000),
        source_account: "222222".into(),
        trace,
        answers,
        ..Default::default()
    }
}

fn answer_to(question: &ChallengeQuestion, option: &str, answer: &str) -> QuestionAnswer {
    QuestionAnswer {
        question_type: question.r#type.clone(),
        question_id: question.id.clone(),
        question_text: question.text.clone(),
        answer_length: question.answer_length.clone(),
        format: question.format.clone(),
        option_id: option.into(),
        answer: answer.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn question_challenge_rounds_reach_an_authorization_code() {
    let app = app().await;
    let mut client = client(&app);
    let opened = client
        .create_question_challenge(question_round(ChallengeRound::Initial, None, Vec::new()))
        .await
        .expect("open")
        .into_inner();
    assert_eq!(opened.result(), AuthorizationResult::QuestionsPending);
    let code_question = &opened.questions[0];
    assert_eq!(code_question.r#type, "M");
    let code = outbox(&app, "111111").await;

    let second = client
        .create_question_challenge(question_round(
            ChallengeRound::Answer,
            opened.trace,
            vec![answer_to(code_question, "", &code)],
        ))
        .await
        .expect("code round")
        .into_inner();
    assert_eq!(second.result(), AuthorizationResult::QuestionsPending);
    let card_question = &second.questions[0];
    assert_eq!(card_question.options.len(), 2);

    let done = client
        .create_question_challenge(question_round(
            ChallengeRound::Answer,
            second.trace,
            vec![answer_to(card_question, "A", "2580")],
        ))
        .await
        .expect("card round")
        .into_inner();
    assert_eq!(done.result(), AuthorizationResult::Authorized);
    assert!(done.authorization_code.contains("100090"));
    app.assert_not_logged(&[&code]);
}

#[tokio::test]
async fn question_challenge_is_denied_when_retries_run_out() {
    let app = app().await;
    let mut client = client(&app);
    let mut round = client
        .create_question_challenge(question_round(ChallengeRound::Initial, None, Vec::new()))
        .await
        .expect("open")
        .into_inner();
    for _ in 0..3 {
        assert_eq!(round.result(), AuthorizationResult::QuestionsPending);
        let question = round.questions[0].clone();
        round = client
            .create_question_challenge(question_round(
                ChallengeRound::Answer,
                round.trace,
                vec![answer_to(&question, "", "000000")],
            ))
            .await
            .expect("wrong answer")
            .into_inner();
    }
    assert_eq!(round.result(), AuthorizationResult::Denied);
}

//! S1, S13, S8, S9 end to end: password status, its changes, users and password changes.

use super::*;

// ---- S1, S13: password status -----------------------------------------------------------

#[tokio::test]
async fn password_status_by_document_and_alias() {
    let app = app().await;
    let mut client = client(&app);
    let by_document = client
        .get_password_status(status_request("4835799410", customer("1007641")))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(by_document.status(), PasswordStatus::Active);
    assert_eq!(by_document.contact.unwrap().cell_phone, "3175137626");

    let by_alias = client
        .get_password_status(status_request(
            "4835799411",
            Subject::UserAlias("ALIAS8985".into()),
        ))
        .await
        .expect("status by alias")
        .into_inner();
    assert_eq!(by_alias.status(), PasswordStatus::Active);

    let locked = client
        .get_password_status(status_request("1", customer("1030")))
        .await
        .expect("locked status")
        .into_inner();
    assert_eq!(locked.status(), PasswordStatus::Locked);

    let missing = client
        .get_password_status(status_request("2", customer("999999999")))
        .await
        .unwrap_err();
    assert_error(&missing, Code::NotFound, "USER_NOT_FOUND");
    assert!(localized(&missing).contains("no existe"), "{missing:?}");
}

#[tokio::test]
async fn locking_a_password_shows_in_its_status_and_twice_is_refused() {
    let app = app().await;
    let mut client = client(&app);
    let lock = || UpdatePasswordStatusRequest {
        customer: cc("1007641"),
        status: PasswordStatus::Locked.into(),
        ..Default::default()
    };
    let changed = client
        .update_password_status(lock())
        .await
        .expect("lock")
        .into_inner();
    assert!(!changed.description.is_empty());
    assert!(changed.effective_time.is_some());

    let status = client
        .get_password_status(status_request("3", customer("1007641")))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.status(), PasswordStatus::Locked);

    let again = client.update_password_status(lock()).await.unwrap_err();
    assert_error(
        &again,
        Code::FailedPrecondition,
        "PASSWORD_STATUS_UNCHANGED",
    );
}

// ---- S8, S9: users and passwords ----------------------------------------------------------------

#[tokio::test]
async fn password_changes_follow_the_policy() {
    let app = app().await;
    let mut client = client(&app);
    let change = |current: &str, new: &str| ChangePasswordRequest {
        customer: cc("38250250"),
        current_password: current.into(),
        new_password: new.into(),
        ..Default::default()
    };
    let cases = [
        (
            "Casa2024ab",
            "38250250",
            Code::InvalidArgument,
            "PASSWORD_EQUALS_ID",
        ),
        (
            "Casa2024ab",
            "Casa2024ab",
            Code::FailedPrecondition,
            "PASSWORD_EQUALS_PREVIOUS",
        ),
        (
            "Casa2024ab",
            "abc",
            Code::InvalidArgument,
            "PASSWORD_LENGTH_INVALID",
        ),
        (
            "Casa2024ab",
            "Casa1234ab",
            Code::InvalidArgument,
            "PASSWORD_REPEATED_OR_CONSECUTIVE",
        ),
        (
            "Casa2024ab",
            "20252026",
            Code::InvalidArgument,
            "PASSWORD_ONLY_DIGITS",
        ),
        (
            "Wrong2024x",
            "Nube2025xy",
            Code::FailedPrecondition,
            "INVALID_CREDENTIALS",
        ),
    ];
    for (current, new, code, expected) in cases {
        let refused = client
            .change_password(change(current, new))
            .await
            .unwrap_err();
        assert_error(&refused, code, expected);
        assert!(!refused.message().contains(new));
    }
    client
        .change_password(change("Casa2024ab", "Nube2025xy"))
        .await
        .expect("a password within the policy");
    app.assert_not_logged(&["Casa2024ab", "Nube2025xy", "Wrong2024x"]);
}

#[tokio::test]
async fn users_are_created_once_and_never_for_unlinkable_customers() {
    let app = app().await;
    let mut client = client(&app);
    let create = |customer: &str| CreateUserRequest {
        customer: cc(customer),
        password: "Rosa2025ab".into(),
        ..Default::default()
    };
    client
        .create_user(create("51901591"))
        .await
        .expect("create");
    let again = client.create_user(create("51901591")).await.unwrap_err();
    assert_error(&again, Code::AlreadyExists, "USER_ALREADY_EXISTS");
    let unlinkable = client.create_user(create("80000001")).await.unwrap_err();
    assert_error(
        &unlinkable,
        Code::FailedPrecondition,
        "CUSTOMER_NOT_LINKABLE",
    );
    client
        .create_user(CreateUserRequest {
            customer: cc("1030"),
            password: "Otra2025cd".into(),
            recovery: true,
            ..Default::default()
        })
        .await
        .expect("recover a locked user's password");
    app.assert_not_logged(&["Rosa2025ab", "Otra2025cd"]);
}

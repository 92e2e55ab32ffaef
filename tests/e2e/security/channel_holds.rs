//! S14, S15 end to end: channel holds listed, paginated, filtered and set.

use super::*;

// ---- S14, S15: channel holds ---------------------------------------------------------------------

#[tokio::test]
async fn channel_holds_are_paginated_and_filtered() {
    let app = app().await;
    let mut client = client(&app);
    let mut seen = 0;
    for page_number in 1..=3 {
        let page = client
            .list_channel_holds(holds("38250250", HoldFilter::All, page_number, 10))
            .await
            .expect("page")
            .into_inner();
        let info = page.page.unwrap();
        assert_eq!(info.total_items, 25);
        assert_eq!(info.total_pages, 3);
        assert_eq!(info.has_next_page, page_number < 3);
        seen += page.holds.len();
    }
    assert_eq!(seen, 25);

    let locked = client
        .list_channel_holds(holds("38250250", HoldFilter::Locked, 1, 20))
        .await
        .expect("locked")
        .into_inner();
    assert_eq!(locked.page.unwrap().total_items, 13);
    assert!(
        locked
            .holds
            .iter()
            .all(|h| h.status() == HoldStatus::Locked)
    );
    assert!(locked.holds.iter().all(|h| h.hold_time.is_some()));

    let failing = client
        .list_channel_holds(holds("80000004", HoldFilter::All, 1, 20))
        .await
        .unwrap_err();
    assert_eq!(failing.code(), Code::Unavailable, "{failing:?}");
}

#[tokio::test]
async fn a_locked_channel_then_shows_in_the_holds() {
    let app = app().await;
    let mut client = client(&app);
    client
        .set_channel_hold(SetChannelHoldRequest {
            customer: cc("1007641"),
            action: HoldAction::Lock.into(),
            r#type: HoldType::User.into(),
            channel: "015".into(),
            sub_channel: "00".into(),
            ..Default::default()
        })
        .await
        .expect("lock");
    let listed = client
        .list_channel_holds(holds("1007641", HoldFilter::Locked, 1, 20))
        .await
        .expect("holds")
        .into_inner();
    let hold = listed
        .holds
        .iter()
        .find(|hold| hold.channel == "015")
        .expect("the new hold is listed");
    assert_eq!(hold.status(), HoldStatus::Locked);
    assert_eq!(hold.r#type(), HoldType::User);

    let both = client
        .set_channel_hold(SetChannelHoldRequest {
            customer: cc("1007641"),
            action: HoldAction::Lock.into(),
            r#type: HoldType::Product.into(),
            channel: "015".into(),
            sub_channel: "00".into(),
            pseudo_channel: "TODOS".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields = bad_fields(&both);
    assert!(fields.contains(&"pseudo_channel".to_owned()), "{fields:?}");
    assert!(fields.contains(&"account_id".to_owned()), "{fields:?}");
}

//! Deadlines too short to send in: refused before anything leaves.

use super::*;

// ---- Deadlines too short to send in -------------------------------------------------------

/// Charges given 1 to 5 ms are refused before anything leaves: nothing reaches Daviplata,
/// nothing is listed as unknown, and each key charges once when retried with time to spare.
#[tokio::test]
async fn a_deadline_too_short_to_send_in_leaves_no_phantom_unknown_outcome() {
    let app = rp::app().await;
    let mut client = rp::client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    let made = app.daviplata_counter("payments_made").await;
    for n in 0..20u64 {
        let mut call = tonic::Request::new(charge(&format!("hurried-{n}"), WALLET, 1_000));
        call.set_timeout(Duration::from_millis(1 + n % 5));
        let refused = client.charge_subscription(call).await.unwrap_err();
        // The client may give up first (CANCELLED); pasarela refuses in any case.
        assert!(
            matches!(refused.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{refused:?}"
        );
    }
    assert_eq!(app.daviplata_counter("payments_made").await, made);
    assert_eq!(
        app.route_calls("daviplata", &format!("POST {PAYMENT_PATH}"))
            .await,
        0,
        "nothing was sent"
    );
    assert!(
        unknown(&app, "pasarela.recurring_payments.v1")
            .await
            .is_empty(),
        "no phantom unknown outcome"
    );
    for n in 0..20u64 {
        client
            .charge_subscription(charge(&format!("hurried-{n}"), WALLET, 1_000))
            .await
            .expect("the retry charges");
    }
    assert_eq!(app.daviplata_counter("payments_made").await, made + 20);
}

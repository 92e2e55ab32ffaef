//! TxIds are reserved once a withdrawal is valid and its key new.

use super::*;

// ---- TxIds are reserved once a withdrawal is valid and its key new ---------------------------

/// The TxId's sequence number: its last ten digits.
fn sequence_number(tx_id: &str) -> u64 {
    tx_id[tx_id.len() - 10..].parse().expect("ten digits")
}

/// A refused request, a replay and a duplicate under a held key take no TxId: the next new
/// withdrawal has the number after the last one sent.
#[tokio::test]
async fn only_a_valid_withdrawal_under_a_new_key_takes_a_tx_id() {
    let app = sec::app().await;
    let mut client = sec::client(&app);
    let otp = withdrawal_otp(&mut client).await;
    let first = client
        .withdraw_with_otp(withdrawal(&otp, "seq-1"))
        .await
        .expect("paid")
        .into_inner();
    let mut invalid = withdrawal(&otp, "seq-2");
    invalid.audit_number = "not digits".into();
    let refused = client.withdraw_with_otp(invalid).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let replayed = client
        .withdraw_with_otp(withdrawal(&otp, "seq-1"))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(replayed, first);
    let otp = withdrawal_otp(&mut client).await;
    let next = client
        .withdraw_with_otp(withdrawal(&otp, "seq-3"))
        .await
        .expect("paid")
        .into_inner();
    assert_eq!(
        sequence_number(&next.tx_id),
        sequence_number(&first.tx_id) + 1,
        "{} then {}",
        first.tx_id,
        next.tx_id
    );
}

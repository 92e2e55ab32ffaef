//! Channel holds: listing holds page by page and by status (S14), and locking and
//! unlocking channels or products (S15).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Credentials, camel, send, start};

fn holds(number: &str, query: &str) -> String {
    format!("/security-management/v1/channelholds/{number}?GovIssueIdentType=CC&{query}")
}

#[tokio::test]
async fn channel_holds_page_and_filter() {
    let bcs = start().await;
    let (status, body) = bcs
        .get(&holds(
            "38250250",
            "status=T&initialRecord=1&RecordsXPage=20",
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = &body["trnSrcInfo"];
    assert_eq!(
        page["resultsPagesGeneric"],
        json!({ "totalRecords": "0025", "recordsXPage": "20" })
    );
    assert_eq!(page["blockingInfo"].as_array().unwrap().len(), 20);
    let first = &page["blockingInfo"][0];
    assert_eq!(
        (first["type"].as_str(), first["status"].as_str()),
        (Some("Product"), Some("Lock"))
    );
    assert_eq!(page["blockingInfo"][1]["status"], "Unlock");
    assert_eq!(page["blockingInfo"][4]["type"], "User");

    let (_, body) = bcs
        .get(&holds(
            "38250250",
            "status=T&initialRecord=21&RecordsXPage=20",
        ))
        .await;
    assert_eq!(
        body["trnSrcInfo"]["resultsPagesGeneric"]["recordsXPage"],
        "05"
    );
    assert_eq!(
        body["trnSrcInfo"]["blockingInfo"].as_array().unwrap().len(),
        5
    );

    for filter in ["B", "Locked"] {
        let (_, body) = bcs
            .get(&holds(
                "38250250",
                &format!("status={filter}&RecordsXPage=20"),
            ))
            .await;
        assert_eq!(
            body["trnSrcInfo"]["resultsPagesGeneric"]["totalRecords"],
            "0013"
        );
        assert!(
            body["trnSrcInfo"]["blockingInfo"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["status"] == "Lock")
        );
    }
    for query in [
        "RecordsXPage=21",
        "RecordsXPage=0",
        "status=X",
        "initialRecord=uno",
    ] {
        let (status, body) = bcs.get(&holds("38250250", query)).await;
        assert_eq!(
            (status, camel(&body).0),
            (StatusCode::BAD_REQUEST, "ER"),
            "{query}"
        );
    }
    let (status, body) = bcs.get(&holds("99999999", "status=T")).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::NOT_FOUND, ("ER", "51011", "SCL"))
    );
    let (status, body) = bcs.get(&holds("80000004", "status=T")).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, ("ER500", "", ""))
    );
}

fn blocking(number: &str, fields: Value) -> Value {
    let mut info = json!({
        "identSerialNum": number, "govIssueIdentType": "CC", "channel": "", "subChannel": "",
        "acctId": "", "channelDesc": "", "user": "INTERNET", "branchId": "321102",
    });
    info.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    json!({ "trnSrcInfo": { "blockingInfo": info } })
}

#[tokio::test]
async fn lock_and_unlock_channels() {
    let bcs = start().await;
    let path = "/security-management/v1/channelholds";
    let lock = blocking(
        "1007641",
        json!({ "channel": "015", "subChannel": "00", "action": "Lock", "type": "User" }),
    );
    let (status, body) = send(
        bcs.request(Method::POST, path, Credentials::Gateway)
            .json(&lock),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "responseType": { "value": "OK" } }));
    let (_, listed) = bcs.get(&holds("1007641", "status=B")).await;
    assert_eq!(listed["trnSrcInfo"]["blockingInfo"][0]["channel"], "015");
    assert_eq!(listed["trnSrcInfo"]["blockingInfo"][0]["type"], "User");

    let unlock = blocking(
        "1007641",
        json!({ "channel": "015", "subChannel": "00", "action": "N", "type": "C" }),
    );
    assert_eq!(bcs.post(path, unlock).await.0, StatusCode::OK);
    let (_, listed) = bcs.get(&holds("1007641", "status=T")).await;
    let hold = &listed["trnSrcInfo"]["blockingInfo"][0];
    assert_eq!(hold["status"], "Unlock");
    assert_eq!(hold["unblockingInfo"]["user"], "INTERNET");
    let (_, locked) = bcs.get(&holds("1007641", "status=B")).await;
    assert_eq!(
        locked["trnSrcInfo"]["resultsPagesGeneric"]["totalRecords"],
        "0000"
    );

    let by_product = blocking(
        "1007641",
        json!({ "channelDesc": "TODOS", "action": "Lock", "type": "Product", "acctId": "24500012345" }),
    );
    assert_eq!(bcs.post(path, by_product).await.0, StatusCode::OK);
    let (_, locked) = bcs.get(&holds("1007641", "status=B")).await;
    assert_eq!(
        locked["trnSrcInfo"]["resultsPagesGeneric"]["totalRecords"],
        "0003"
    );
    assert!(
        locked["trnSrcInfo"]["blockingInfo"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["acctId"] == "24500012345")
    );

    let rejected = [
        (
            json!({ "channel": "007", "subChannel": "00", "action": "Lock", "type": "Product", "acctId": "1" }),
            "05620",
        ),
        (
            json!({ "channel": "007", "subChannel": "00", "channelDesc": "TODOS", "action": "Lock", "type": "User" }),
            "400",
        ),
        (
            json!({ "channelDesc": "NINGUNO", "action": "Lock", "type": "User" }),
            "400",
        ),
        (
            json!({ "channel": "007", "subChannel": "00", "action": "Freeze", "type": "User" }),
            "400",
        ),
    ];
    for (fields, code) in rejected {
        let (status, body) = bcs.post(path, blocking("1007641", fields)).await;
        assert_eq!((status, camel(&body).1), (StatusCode::BAD_REQUEST, code));
    }
    let faulty = blocking(
        "80000004",
        json!({ "channel": "007", "subChannel": "00", "action": "Lock", "type": "User" }),
    );
    let (status, body) = bcs.post(path, faulty).await;
    assert_eq!(
        (status, camel(&body).0),
        (StatusCode::INTERNAL_SERVER_ERROR, "ER500")
    );
}

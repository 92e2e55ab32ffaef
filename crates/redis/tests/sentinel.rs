//! What pasarela tells a Sentinel and the primary it names, against a fake Sentinel that
//! records every command and names any host the test chooses: the sentinels are asked with
//! their own credentials, and a Sentinel reached in clear can send the primary's password to
//! a foreign host (which is why `serve` refuses plain-text Redis in front of production).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pasarela_redis::Redis;
use pasarela_test_support::redis_server::TestRedis;
use pasarela_test_support::tools;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Every byte a listener received, across its connections.
type Heard = Arc<Mutex<Vec<u8>>>;

/// A server in clear that records every byte it is sent and answers each read with what
/// `answer` makes of it.
async fn recording_server(
    answer: impl Fn(&str) -> String + Clone + Send + 'static,
) -> (SocketAddr, Heard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let heard = Heard::default();
    let log = Arc::clone(&heard);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (log, answer) = (Arc::clone(&log), answer.clone());
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                while let Ok(n) = tcp.read(&mut buffer).await {
                    if n == 0 {
                        return;
                    }
                    log.lock().unwrap().extend_from_slice(&buffer[..n]);
                    let reply = answer(&String::from_utf8_lossy(&buffer[..n]));
                    if tcp.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, heard)
}

/// A Sentinel in clear that answers `AUTH` and `CLIENT` with `+OK` and names `primary` as
/// every master; answers what it heard.
async fn fake_sentinel(primary: SocketAddr) -> (SocketAddr, Heard) {
    recording_server(move |text| {
        let text = text.to_ascii_uppercase();
        let mut answer = String::new();
        for _ in text.matches("AUTH").chain(text.matches("CLIENT")) {
            answer.push_str("+OK\r\n");
        }
        if text.contains("SENTINEL") {
            let (host, port) = (primary.ip().to_string(), primary.port().to_string());
            answer.push_str(&format!(
                "*2\r\n${}\r\n{host}\r\n${}\r\n{port}\r\n",
                host.len(),
                port.len()
            ));
        }
        answer
    })
    .await
}

/// A host that records what it is sent and answers nothing useful.
async fn foreign_host() -> (SocketAddr, Heard) {
    recording_server(|_| "-ERR not redis\r\n".to_owned()).await
}

fn said(heard: &Heard, text: &str) -> bool {
    String::from_utf8_lossy(&heard.lock().unwrap()).contains(text)
}

#[tokio::test]
async fn sentinels_are_asked_with_their_own_credentials_and_only_then() {
    if tools::lacking(&["redis-server"]) {
        return;
    }
    let redis = TestRedis::start().await;
    let primary: SocketAddr = ([127, 0, 0, 1], redis.port()).into();
    let (sentinel, heard) = fake_sentinel(primary).await;
    let url = format!(
        "redis+sentinel://{sentinel}/pasarela?sentinel_username=watcher&sentinel_password=watch-pw"
    );
    Redis::connect(&SecretString::from(url), None, "test")
        .await
        .expect("the named primary is reached");
    assert!(
        said(&heard, "AUTH\r\n$7\r\nwatcher\r\n$8\r\nwatch-pw\r\n"),
        "the sentinel was asked with its credentials"
    );

    let (bare, unheard) = fake_sentinel(primary).await;
    let url = format!("redis+sentinel://{bare}/pasarela");
    Redis::connect(&SecretString::from(url), None, "test")
        .await
        .expect("an unauthenticated sentinel is asked too");
    assert!(!said(&unheard, "AUTH"), "no credentials to send: none sent");
}

#[tokio::test]
async fn a_sentinel_in_clear_can_send_the_primarys_password_to_a_foreign_host() {
    let (foreign, stolen) = foreign_host().await;
    let (sentinel, _) = fake_sentinel(foreign).await;
    let url = format!("redis+sentinel://pasarela:node-secret@{sentinel}/pasarela");
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        Redis::connect(&SecretString::from(url), None, "test"),
    )
    .await
    .expect("bounded");
    assert!(connected.is_err(), "the foreign host is no primary");
    assert!(
        said(&stolen, "node-secret"),
        "in clear, whoever a sentinel names receives the password: serve refuses this URL in \
         front of production"
    );
}

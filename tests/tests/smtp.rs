//! E-mail over SMTP: a small SMTP server on loopback receives what the
//! server's outbox sends, and the outbox keeps no body once it is sent.

use espace_famille_tests::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Accepts SMTP sessions on a free loopback port; each message's data goes
/// to the channel.
async fn smtp_server() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (messages, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let messages = messages.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 localhost ESMTP test\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 localhost\r\n",
                        "DATA" => {
                            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(&line);
                                data.push_str("\r\n");
                            }
                            let _ = messages.send(data);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    write.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (port, received)
}

#[tokio::test]
async fn activation_links_are_sent_over_smtp_and_not_kept_once_sent() {
    let (port, mut received) = smtp_server().await;
    let app = spawn_app_with_smtp(&format!("smtp://127.0.0.1:{port}")).await;
    let admin = admin(&app).await;
    let created = app
        .gql(
            Some(&admin),
            "mutation { createCollectivity(input: { name: \"Tigeaux\" }) { id } }",
            json!({}),
        )
        .await;
    let commune = created.data("createCollectivity")["id"].clone();
    let email = format!("agent-{}@mairie.example.fr", Uuid::new_v4().simple());
    app.gql(
        Some(&admin),
        "mutation($c: UUID!, $e: String!) { createAgentAccount(collectivityId: $c, email: $e) { role } }",
        json!({ "c": commune, "e": email }),
    )
    .await
    .data("createAgentAccount");

    let message = tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
        .await
        .expect("no message reached the SMTP server in 10 s")
        .unwrap();
    let message = decode_mail(&message);
    assert!(message.contains(&format!("To: {email}")), "{message}");
    assert!(message.contains("Activez votre compte"), "{message}");

    // The link works, and the outbox no longer holds it.
    let token = link_token(&message);
    let activated = app
        .gql(
            None,
            "mutation($t: String!, $p: String!) { activateAccount(input: { token: $t, password: $p }) { token } }",
            json!({ "t": token, "p": PASSWORD }),
        )
        .await;
    activated.data("activateAccount");
    let kept: (Option<String>, bool) =
        sqlx::query_as("SELECT body, sent_at IS NOT NULL FROM outbox WHERE recipient = $1")
            .bind(&email)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(kept, (None, true));
    app.stop().await;
}

//! The console in a real browser (headless Chromium over WebDriver): the
//! flows an account admin walks, each step asserting what the page shows;
//! every main page screenshot at two widths in both languages; and an
//! axe-core check of every page.

use crate::browser::Browser;
use crate::support::*;

/// The two widths every page must work at.
const WIDTHS: [(u32, u32, &str); 2] = [(1440, 900, "wide"), (360, 780, "narrow")];

#[tokio::test]
async fn an_admin_signs_in_creates_and_deletes_an_organization() {
    let server = Server::start();
    let acme = server.create_account("acme");
    let b = Browser::open(&server.base, 1440, 900, "en").await;

    // Not signed in: the sign-in page, and back afterwards.
    b.go("/console/orgs").await;
    assert_eq!(b.path().await, "/console/signin?next=%2Fconsole%2Forgs");
    b.fill("account", "acme").await;
    b.fill("user", "admin").await;
    b.fill("password", "wrong-password").await;
    b.click("form[action='/console/signin'] button[type=submit]")
        .await;
    assert_eq!(
        b.text("#signin-error").await,
        "Wrong account, user or password."
    );
    b.fill("password", "admin-password").await;
    b.click("form[action='/console/signin'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/console/orgs");
    assert!(b.text(".me").await.contains("admin · acme"));

    // Create one; a taken name is refused beside the field.
    b.fill("namespace", "team").await;
    b.click("form[action='/console/orgs'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/console/orgs/team?done=created");
    assert_eq!(b.text(".notice").await, "The organization was created.");
    b.go("/console/orgs").await;
    b.fill("namespace", "team").await;
    b.click("form[action='/console/orgs'] button[type=submit]")
        .await;
    assert!(
        b.text("#namespace-error").await.contains("already exists"),
        "{}",
        b.page_text().await
    );

    // Its page offers deletion while it is empty. An image pushed after the
    // page was shown makes the delete fail, in words, beside the field.
    b.go("/console/orgs/team").await;
    push_image_as(&server, &acme.client(), "team/web", "v1", 7).await;
    b.fill("confirm", "team").await;
    b.click("form[action='/console/orgs/team/delete'] button[type=submit]")
        .await;
    let refused = b.text(".card.danger .error").await;
    assert!(
        refused.contains("web"),
        "names the image in the way: {refused}"
    );
    assert!(b.page_text().await.contains("still holds images"));

    let (status, _) = manage(
        &server,
        "DELETE",
        "/namespaces/team/repos/web",
        &acme.basic(),
        serde_json::Value::Null,
    );
    assert_eq!(status, 204);
    b.go("/console/orgs/team").await;
    b.fill("confirm", "team").await;
    b.click("form[action='/console/orgs/team/delete'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/console/orgs?done=deleted");
    assert_eq!(b.text(".notice").await, "The organization was deleted.");
    assert!(!b.page_text().await.contains("team"));
    b.close().await;
}

/// A form posted without the browser's token is refused, and changes
/// nothing.
#[test]
fn a_form_without_its_token_is_refused() {
    let server = Server::start();
    let token = server.session("system", "admin", OPERATOR_PASSWORD);
    let cookie = format!("berth_session={token}; berth_csrf={}", "a".repeat(64));
    let (status, body) = http(
        &server,
        "POST",
        "/console/orgs",
        &[
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("_csrf={}&namespace=forged", "b".repeat(64)),
    );
    assert_eq!(status, 403, "{body}");
    let (status, _) = manage(
        &server,
        "GET",
        "/namespaces/forged",
        &server.operator_basic(),
        serde_json::Value::Null,
    );
    assert_eq!(status, 404);
}

/// Every page built so far, at both widths and in both languages: a
/// screenshot each, the page in the right language, and no serious or
/// critical accessibility violation.
#[tokio::test]
async fn every_page_reads_in_both_languages_at_both_widths_and_passes_axe() {
    let server = Server::start();
    let acme = server.create_account("acme");
    let (status, _) = manage(
        &server,
        "POST",
        "/namespaces",
        &acme.basic(),
        serde_json::json!({"namespace": "team"}),
    );
    assert_eq!(status, 201);
    push_image_as(&server, &acme.client(), "team/web", "v1", 3).await;
    let pages = [
        ("signin", "/console/signin"),
        ("images", "/console/images"),
        ("images-shared", "/console/images?tab=shared"),
        ("orgs", "/console/orgs"),
        ("org", "/console/orgs/team"),
    ];
    let mut violations = Vec::new();
    for (lang, title) in [("en", "Images"), ("zh-CN", "镜像")] {
        for (width, height, label) in WIDTHS {
            let b = Browser::open(&server.base, width, height, lang).await;
            b.sign_in("acme", "admin", "admin-password").await;
            assert_eq!(b.text("h1").await, title, "{lang} at {label}");
            for (name, path) in pages {
                if name == "signin" {
                    continue;
                }
                b.go(path).await;
                b.screenshot(&format!("{name}-{lang}-{label}")).await;
                for v in b.accessibility_violations().await {
                    violations.push(format!("{path} ({lang}, {label}): {v}"));
                }
            }
            b.click("form[action='/console/signout'] button").await;
            assert!(b.path().await.starts_with("/console/signin"));
            b.screenshot(&format!("signin-{lang}-{label}")).await;
            for v in b.accessibility_violations().await {
                violations.push(format!("/console/signin ({lang}, {label}): {v}"));
            }
            b.close().await;
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

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

/// Every main page, at both widths and in both languages: a screenshot
/// each, the page in the right language, and no serious or critical
/// accessibility violation (axe-core).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_reads_in_both_languages_at_both_widths_and_passes_axe() {
    let server = Server::start();
    let acme = server.create_account("acme");
    server.create_account("partner");
    server.create_user(&acme, "alice");
    let (status, _) = manage(
        &server,
        "POST",
        "/namespaces",
        &acme.basic(),
        serde_json::json!({"namespace": "team"}),
    );
    assert_eq!(status, 201);
    push_image_as(&server, &acme.client(), "team/web", "v1", 3).await;
    push_image_as(&server, &acme.client(), "team/web", "v2", 4).await;
    for (method, path, body) in [
        (
            "PATCH",
            "/namespaces/team/repos/web",
            serde_json::json!({"category": "app-server", "description": "The team's web front end."}),
        ),
        (
            "POST",
            "/namespaces/team/repos/web/access-domains",
            serde_json::json!({"access_domain": "partner", "deadline": "forever", "description": "for CI"}),
        ),
        (
            "POST",
            "/namespaces/team/repos/web/access",
            serde_json::json!({"users": [{"user_name": "alice", "auth": 3}]}),
        ),
    ] {
        let (status, reply) = manage(&server, method, path, &acme.basic(), body);
        assert!(status < 300, "{method} {path}: {reply}");
    }
    let pages = [
        ("images", "/console/images"),
        ("images-shared-by-me", "/console/images?tab=by-me"),
        ("image-versions", "/console/images/team/web"),
        (
            "image-description",
            "/console/images/team/web?tab=description",
        ),
        ("image-sharing", "/console/images/team/web?tab=sharing"),
        (
            "image-permissions",
            "/console/images/team/web?tab=permissions",
        ),
        ("image-guide", "/console/images/team/web?tab=guide"),
        ("image-edit", "/console/images/team/web?tab=edit"),
        ("orgs", "/console/orgs"),
        ("org", "/console/orgs/team"),
        ("keys", "/console/keys"),
        ("users", "/console/users"),
        ("storage", "/console/storage"),
        ("audit", "/console/audit"),
        (
            "audit-timeline",
            "/console/audit?view=timeline&namespace=team&repo=web",
        ),
    ];
    let mut violations = Vec::new();
    for (lang, title) in [("en", "Images"), ("zh-CN", "镜像")] {
        for (width, height, label) in WIDTHS {
            let b = Browser::open(&server.base, width, height, lang).await;
            b.sign_in("acme", "admin", "admin-password").await;
            assert_eq!(b.text("h1").await, title, "{lang} at {label}");
            for (name, path) in pages {
                b.go(path).await;
                let html_lang = b
                    .client
                    .execute("return document.documentElement.lang;", vec![])
                    .await
                    .unwrap();
                assert_eq!(html_lang, lang, "{path}");
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

/// The whole flow an account admin walks, in a real browser, each step
/// asserting what the page shows: sign in; create an organization; upload
/// a `docker save` archive through the page and watch it finish; pull it
/// with the real Docker engine, logged in with the temporary login the
/// "Client upload" dialog makes; edit its attributes; share it; see it, as
/// the other account, under "Shared with me"; delete a version; fail to
/// delete the organization while it holds the image, then delete both;
/// and find each of these in the audit view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_flow_from_sign_in_to_the_audit_view() {
    let server = Server::start();
    server.create_account("acme");
    server.create_account("partner");
    let b = Browser::open(&server.base, 1440, 900, "en").await;

    // 1. Sign in.
    b.sign_in("acme", "admin", "admin-password").await;
    assert_eq!(b.text("h1").await, "Images");

    // 2. Create an organization.
    b.go("/console/orgs").await;
    b.fill("namespace", "flow").await;
    b.click("form[action='/console/orgs'] button[type=submit]")
        .await;
    assert_eq!(b.text(".notice").await, "The organization was created.");

    // 3. Upload an archive through the page and watch it finish.
    b.go("/console/images").await;
    b.click_only("#open-upload").await;
    b.fill("upload-namespace", "flow").await;
    let archive =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/uploads/oci-only.tar.gz");
    b.client
        .find(fantoccini::Locator::Id("upload-files"))
        .await
        .unwrap()
        .send_keys(archive.to_str().unwrap())
        .await
        .unwrap();
    b.click_only("#upload-submit").await;
    let mut finished = String::new();
    for _ in 0..200 {
        finished = b.text("#upload-result").await;
        if !finished.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(finished, "Every file was stored.");
    assert!(b.text("#upload-list").await.contains("flow/oci-gz:3.0"));

    // 4. Pull it with the real Docker engine, logged in with the temporary
    // login the "Client upload" dialog makes.
    b.go("/console/images").await;
    b.click_only("#open-client").await;
    b.click("#client-dialog form button[type=submit]").await;
    let command = b.text("#client-command").await;
    let words: Vec<&str> = command.split(' ').collect();
    assert_eq!(words[..3], ["docker", "login", "-u"], "{command}");
    let (user, password, host) = (
        words[3].to_owned(),
        words[5].to_owned(),
        words[6].to_owned(),
    );
    assert_eq!(
        host,
        server.host(),
        "the command names the registry as the browser reached it"
    );
    let remote = format!("{host}/flow/oci-gz:3.0");
    let pulled = tokio::task::spawn_blocking(move || {
        let d = Docker::new();
        d.login_host(&host, &user, &password).unwrap();
        d.pull_fresh(&remote).unwrap();
        let id = d.run(&["image", "inspect", "-f", "{{.Id}}", &remote]);
        d.run(&["rmi", &remote]);
        id
    })
    .await
    .unwrap();
    assert!(pulled.starts_with("sha256:"), "{pulled}");

    // 5. Edit its attributes (it stays private, to be shared).
    b.go("/console/images/flow/oci-gz?tab=edit").await;
    b.click_only("#edit-category option[value='database']")
        .await;
    b.fill("edit-description", "Built for the console flow test.")
        .await;
    assert_eq!(
        b.text("#edit-description-count").await,
        "32 of 30000 characters"
    );
    b.click("#edit-save").await;
    assert_eq!(b.text(".notice").await, "The image was changed.");
    assert!(b.page_text().await.contains("Database"));
    assert_eq!(
        b.text(".description").await,
        "Built for the console flow test."
    );

    // 6. Share it with another account.
    b.go("/console/images/flow/oci-gz?tab=sharing").await;
    b.fill("share-account", "partner").await;
    b.click_only("#share-forever").await;
    b.fill("share-note", "for the partner's CI").await;
    b.click("form[action$='/shares'] button[type=submit]").await;
    assert_eq!(b.text(".notice").await, "The image was shared.");
    assert!(b.text("table").await.contains("partner"));

    // 7. As the other account, see it under "Shared with me".
    b.click("form[action='/console/signout'] button").await;
    b.sign_in("partner", "admin", "admin-password").await;
    b.go("/console/images?tab=shared").await;
    let shared = b.text("table").await;
    assert!(
        shared.contains("oci-gz") && shared.contains("acme") && shared.contains("Permanent"),
        "{shared}"
    );
    b.click("form[action='/console/signout'] button").await;
    b.sign_in("acme", "admin", "admin-password").await;

    // 8. Delete a version, after a confirmation.
    b.go("/console/images/flow/oci-gz").await;
    b.click_only("input[name=tag][value='3.0']").await;
    b.click("#delete-tags").await;
    assert!(b
        .text("#confirm-title")
        .await
        .contains("Delete these versions?"));
    b.click("#confirm-delete").await;
    assert_eq!(b.text(".notice").await, "The versions were deleted.");
    assert!(b.page_text().await.contains("No version yet"));

    // 9. The organization cannot be deleted while it holds the image; once
    // the image is deleted, it can.
    b.go("/console/orgs/flow").await;
    assert!(b.page_text().await.contains("still holds images"));
    assert!(b
        .client
        .find(fantoccini::Locator::Css("form[action$='/delete']"))
        .await
        .is_err());
    b.go("/console/images/flow/oci-gz").await;
    b.fill("confirm", "oci-gz").await;
    b.click("#delete-image").await;
    assert_eq!(b.text(".notice").await, "The image was deleted.");
    b.fill("confirm", "flow").await;
    b.click("form[action='/console/orgs/flow/delete'] button[type=submit]")
        .await;
    assert_eq!(b.text(".notice").await, "The organization was deleted.");

    // 10. Each of these is in the audit view.
    b.go("/console/audit?view=events&namespace=flow").await;
    let page = b.page_text().await;
    assert!(!page.contains("No record matches"), "{page}");
    let records = b.text("#records").await;
    for action in [
        "NamespaceCreated",
        "ManifestPushed",
        "RepositoryAttributesChanged",
        "ShareGranted",
        "TagDeleted",
        "RepositoryDeleted",
        "OrganizationDeleted",
    ] {
        assert!(
            records.contains(action),
            "{action} is in the audit view:\n{records}"
        );
    }
    b.screenshot("audit-flow-en-wide").await;
    b.close().await;
}

/// A form sent twice (a double click, a resend after a timeout) carries
/// the same `Idempotency-Key`, so it changes things once: the second
/// answer is the first one's, not "already exists".
#[test]
fn a_form_sent_twice_changes_things_once() {
    let mut server = Server::start();
    let token = server.session("system", "admin", OPERATOR_PASSWORD);
    let csrf = "c".repeat(64);
    let cookie = format!("berth_session={token}; berth_csrf={csrf}");
    let headers = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let form = format!("_csrf={csrf}&_key=3f1c2a9e-form-once&namespace=twice");
    for _ in 0..2 {
        let (status, body) = http(&server, "POST", "/console/orgs", &headers, &form);
        assert_eq!(status, 303, "{body}");
    }
    let again = form.replace("form-once", "form-other");
    let (status, body) = http(&server, "POST", "/console/orgs", &headers, &again);
    assert_eq!(status, 409, "a new form is a new request");
    assert!(body.contains("already exists"), "{body}");
    server.stop();
    let created = event_types_from(&server.dir, 1)
        .iter()
        .filter(|t| *t == "NamespaceCreated")
        .count();
    assert_eq!(created, 1);
}

/// Failed sign-ins are throttled as the API throttles them, and the page
/// says so with the API's own message (in English) or its Chinese
/// equivalent, with the same wait.
#[test]
fn failed_sign_ins_show_the_apis_throttle() {
    let server = Server::start();
    server.create_account("acme");
    let csrf = "d".repeat(64);
    let cookie = format!("berth_csrf={csrf}");
    let form = format!(
        "_csrf={csrf}&next=%2Fconsole%2Fimages&account=acme&user=admin&password=wrong-password"
    );
    let sign_in = |lang: &str| {
        http(
            &server,
            "POST",
            "/console/signin",
            &[
                ("Cookie", cookie.as_str()),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept-Language", lang),
            ],
            &form,
        )
    };
    for _ in 0..5 {
        let (status, page) = sign_in("en");
        assert_eq!(status, 401);
        assert!(page.contains("Wrong account, user or password."), "{page}");
    }
    let (status, page) = sign_in("en");
    assert_eq!(status, 429);
    assert!(page.contains("too many failed logins; retry in"), "{page}");
    let (status, page) = sign_in("zh-CN,zh;q=0.9");
    assert_eq!(status, 429);
    assert!(page.contains("登录失败次数过多"), "{page}");
}

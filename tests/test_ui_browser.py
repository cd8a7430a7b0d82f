"""The settings screen in a real browser: Playwright driving Debian's Chromium (scripts/bootstrap
installs it). What a person does with the OAuth editor, from the page alone: add a record through
the form, load presets, Get Refresh Token against the fake provider, Test, Export, Import and
Delete; another plugin's editor; the action catalogue."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from ui_support import ROOT, running_screen, second_plugin

from hostsim.runtime.host import Host
from hostsim.ui.server import write_launcher
from robomail_plugin.credentials.presets import builtin_presets

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT = ROOT / "docs" / "settings-screen.png"
FIELD_LABELS = ("Record Name", "Client Account", "Client ID", "Client Secret", "Refresh Token",
                "Authorization Endpoint", "Access Token Endpoint", "Scope")
PRESETS = {p.key: p for p in builtin_presets()}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One Chromium for the whole session (each test gets its own context: cookies apart)."""
    assert Path(CHROMIUM).exists(), "Chromium is missing: run scripts/bootstrap"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def screen_host() -> Host:
    return Host.load()


@pytest.fixture
def screen(screen_host):
    with running_screen(screen_host) as (server, log):
        yield server


@pytest.fixture
def page(browser: Browser, screen) -> Iterator[Page]:
    """The OAuth editor's page, opened at the printed address; no CSP violation is allowed."""
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    violations: list[str] = []
    tab.on("console", lambda m: violations.append(m.text)
           if "Content Security Policy" in m.text else None)
    tab.goto(screen.url)
    expect(tab).to_have_url(re.compile(r"/editors/oauth$"))  # the token left the address bar
    yield tab
    context.close()
    assert not violations, violations


def test_the_launcher_file_opens_the_screen_and_only_its_owner_can_read_it(
    browser, screen, tmp_path
):
    """`hostsim ui` starts the browser on this file: a command line (and so the token in it)
    is visible to every user of the machine, a file of mode 0600 is not."""
    launcher = write_launcher(tmp_path / "ui", screen.url)
    assert launcher.stat().st_mode & 0o777 == 0o600
    assert screen.guard.token not in launcher.as_uri()
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(launcher.as_uri())
    expect(tab).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/editors/oauth$"))
    expect(tab.get_by_role("heading", name="OAuth parameters", level=1)).to_be_visible()
    context.close()


def fill_record(page: Page, name: str, fake_provider, client: tuple[str, str],
                **overrides: str) -> None:
    values = {
        "Record Name": name, "Client Account": "alice@example.test", "Client ID": client[0],
        "Client Secret": client[1], "Authorization Endpoint": fake_provider.authorize_url,
        "Access Token Endpoint": fake_provider.token_url, "Scope": "mail offline_access",
        **overrides,
    }
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)


def add_record(page: Page, name: str, fake_provider, client: tuple[str, str],
               **overrides: str) -> None:
    page.get_by_role("button", name="New record").click()
    fill_record(page, name, fake_provider, client, **overrides)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").first).to_have_text(f"Added OAuth record {name!r}.")


def secret_state(page: Page, label: str):
    return expect(page.get_by_label(label, exact=True))


def dialog(page: Page):
    return page.get_by_role("dialog")


# --- the form -------------------------------------------------------------------------------


def test_a_record_added_through_the_form_keeps_its_secret_write_only(
    page, fake_provider, oauth_client
):
    for label in FIELD_LABELS:
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    expect(page.get_by_label("Refresh Token", exact=True)).not_to_be_editable()
    for name in ("Save", "Load Predefined Endpoints", "Get Refresh Token", "Test",
                 "Export info to file", "Import info from file", "Delete"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    # what the form says before saving, next to the field
    fill_record(page, "Work Mail", fake_provider, oauth_client,
                **{"Client ID": "", "Authorization Endpoint": "http://auth.example.test/a"})
    page.get_by_role("button", name="Save", exact=True).click()
    client_id = page.locator(".field").filter(has=page.get_by_label("Client ID", exact=True))
    expect(client_id.get_by_role("alert")).to_have_text("Client ID is required.")
    endpoint = page.locator(".field").filter(
        has=page.get_by_label("Authorization Endpoint", exact=True))
    expect(endpoint.get_by_role("alert")).to_contain_text("plain http")

    fill_record(page, "Work Mail", fake_provider, oauth_client)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").first).to_have_text("Added OAuth record 'Work Mail'.")
    expect(page.get_by_role("list", name="Records").get_by_role("button")).to_have_text(
        ["Work Mail"])
    expect(client_id.get_by_role("alert")).to_be_hidden()  # empty: nothing to say
    secret_state(page, "Client Secret").to_have_accessible_description(re.compile("^Set"))
    secret_state(page, "Refresh Token").to_have_accessible_description(re.compile("^Not set"))
    expect(page.get_by_label("Client Secret", exact=True)).to_have_value("")
    expect(page.get_by_label("Record Name", exact=True)).not_to_be_editable()

    # a fresh page shows the record again, without its secret
    page.reload()
    page.get_by_role("button", name="Work Mail").click()
    expect(page.get_by_label("Client ID", exact=True)).to_have_value(oauth_client[0])
    expect(page.get_by_label("Scope", exact=True)).to_have_value("mail offline_access")
    secret_state(page, "Client Secret").to_have_accessible_description(re.compile("^Set"))
    assert oauth_client[1] not in page.content()

    # changing one field keeps the secret; a new secret replaces it
    page.get_by_label("Scope", exact=True).fill("mail")
    page.get_by_label("Client Secret", exact=True).fill("a-new-secret-value")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").first).to_have_text("Saved OAuth record 'Work Mail'.")
    expect(page.get_by_label("Scope", exact=True)).to_have_value("mail")
    expect(page.get_by_label("Client Secret", exact=True)).to_have_value("")
    assert "a-new-secret-value" not in page.content()


def test_load_predefined_endpoints_offers_every_plugins_presets(browser, fake_provider,
                                                                 oauth_client):
    host = Host.load(extra_plugins=(second_plugin(),))
    with running_screen(host) as (server, _log):
        context = browser.new_context()
        page = context.new_page()
        page.goto(server.url)
        add_record(page, "Presets", fake_provider, oauth_client)
        page.get_by_role("button", name="Load Predefined Endpoints").click()
        provider = dialog(page).get_by_label("Provider")
        expect(provider.locator("option")).to_have_text(  # by key: example_mail, google, ...
            ["Choose…", "Example Mail", PRESETS["google"].title, PRESETS["microsoft"].title])

        provider.select_option("google")
        dialog(page).get_by_role("button", name="Load Predefined Endpoints").click()
        expect(dialog(page)).to_be_hidden()
        google = PRESETS["google"]
        expect(page.get_by_label("Authorization Endpoint", exact=True)).to_have_value(
            google.authorization_endpoint)
        expect(page.get_by_label("Access Token Endpoint", exact=True)).to_have_value(
            google.token_endpoint)
        expect(page.get_by_label("Scope", exact=True)).to_have_value(google.scope)
        expect(page.get_by_role("status").first).to_contain_text(f"Loaded {google.title}'s endpoints")

        page.get_by_role("button", name="Load Predefined Endpoints").click()
        dialog(page).get_by_label("Provider").select_option("microsoft")
        dialog(page).get_by_label("Tenant").fill("organizations")
        dialog(page).get_by_role("button", name="Load Predefined Endpoints").click()
        microsoft = PRESETS["microsoft"]
        expect(page.get_by_label("Authorization Endpoint", exact=True)).to_have_value(
            microsoft.authorization_endpoint.replace("/common/", "/organizations/"))
        expect(page.get_by_label("Scope", exact=True)).to_have_value(microsoft.scope)

        page.get_by_role("button", name="Load Predefined Endpoints").click()
        dialog(page).get_by_label("Provider").select_option("microsoft")
        dialog(page).get_by_label("Tenant").fill("not a tenant!")
        dialog(page).get_by_role("button", name="Load Predefined Endpoints").click()
        expect(dialog(page).get_by_role("alert")).to_contain_text("Tenant 'not a tenant!'")
        dialog(page).get_by_role("button", name="Cancel").click()

        # a new record takes a preset through Add record (Load Predefined acts on a saved one)
        page.get_by_role("button", name="New record").click()
        expect(page.get_by_role("button", name="Load Predefined Endpoints")).to_be_disabled()
        page.get_by_label("Record Name", exact=True).fill("From Preset")
        page.get_by_label("Client Account", exact=True).fill("carol@example.test")
        page.get_by_label("Client ID", exact=True).fill("carol-client")
        page.get_by_role("button", name="Add record").click()
        dialog(page).get_by_label("Provider").select_option("example_mail")
        dialog(page).get_by_role("button", name="Add record").click()
        expect(page.get_by_role("status").first).to_contain_text(
            "Added OAuth record 'From Preset' with Example Mail's endpoints.")
        expect(page.get_by_label("Access Token Endpoint", exact=True)).to_have_value(
            "https://auth.example-mail.test/token")
        expect(page.get_by_label("Scope", exact=True)).to_have_value("mail offline")
        context.close()


# --- Get Refresh Token and Test -------------------------------------------------------------


def start_get_refresh_token(page: Page):
    page.get_by_role("button", name="Get Refresh Token").click()
    with page.context.expect_page() as opened:
        dialog(page).get_by_role("button", name="Get Refresh Token").click()
    return opened.value


def test_get_refresh_token_signs_in_in_a_new_tab_and_shows_the_result_without_a_reload(
    page, fake_provider, oauth_client
):
    add_record(page, "Signed In", fake_provider, oauth_client)
    page.evaluate("window.sameDocument = true")
    sign_in = start_get_refresh_token(page)
    sign_in.wait_for_load_state()
    expect(sign_in.locator("body")).to_contain_text("Successfully Authenticated")
    expect(page.get_by_role("status").first).to_have_text(
        "Got a Refresh Token for 'Signed In' (browser) and saved it in the record.")
    secret_state(page, "Refresh Token").to_have_accessible_description(re.compile("^Set"))
    expect(page.locator("#details")).to_contain_text("expires_in_s")
    assert page.evaluate("window.sameDocument") is True
    refresh_tokens = list(fake_provider._state.refresh)
    assert refresh_tokens and not any(t in page.content() for t in refresh_tokens)

    page.get_by_role("button", name="Test", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(
        "OAuth record 'Signed In' works: got an access token, valid until")
    expect(page.locator("#details")).to_contain_text("expires_at")
    access_tokens = list(fake_provider._state.access)
    assert access_tokens and not any(t in page.content() for t in access_tokens)


def test_the_providers_refusals_are_shown_with_their_advice(page, fake_provider, oauth_client):
    add_record(page, "Refused", fake_provider, oauth_client)
    fake_provider.deny_consent = True
    tab = start_get_refresh_token(page)
    expect(tab.locator("body")).to_contain_text("Authentication failed")  # in the new tab
    tab.close()
    expect(page.locator("#command-error")).to_contain_text(
        "consent was declined; run Get Refresh Token again and allow access")

    fake_provider.deny_consent = False
    page.get_by_label("Client Secret", exact=True).fill("not-the-right-secret")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").first).to_have_text("Saved OAuth record 'Refused'.")
    tab = start_get_refresh_token(page)
    expect(tab.locator("body")).to_contain_text("Authentication failed")
    tab.close()
    expect(page.locator("#command-error")).to_contain_text("invalid_client")
    secret_state(page, "Refresh Token").to_have_accessible_description(re.compile("^Not set"))

    page.get_by_role("button", name="Test", exact=True).click()
    expect(page.locator("#command-error")).to_contain_text("Test failed (")


def test_waiting_for_sign_in_shows_the_time_left_and_cancel_stops_it(
    page, fake_provider, oauth_client
):
    add_record(page, "Waiting", fake_provider, oauth_client,
               **{"Authorization Endpoint": fake_provider.base_url + "/nobody-answers"})
    tab = start_get_refresh_token(page)
    job = page.locator("#job")
    expect(job).to_be_visible()
    expect(job).to_contain_text(re.compile(r"[45]:\d\d left"))
    expect(page.get_by_role("link", name="Open the sign-in page")).to_have_attribute(
        "href", re.compile("^" + re.escape(fake_provider.base_url + "/nobody-answers")))
    job.get_by_role("button", name="Cancel").click()
    expect(page.locator("#command-error")).to_contain_text("cancelled")
    expect(job).to_be_hidden()
    tab.close()


def test_test_shows_the_expiry_never_the_token(page, make_oauth_record, fake_provider):
    name = make_oauth_record("bob@example.test")
    page.reload()
    page.get_by_role("button", name=name).click()
    page.get_by_role("button", name="Test", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("works: got an access token")
    expect(page.locator("#details")).to_contain_text(re.compile(r"expires_in_s\s*\d+"))
    assert not any(t in page.content() for t in fake_provider._state.access)

    fake_provider.fail_next("invalid_grant")
    page.get_by_role("button", name="Test", exact=True).click()
    expect(page.locator("#command-error")).to_contain_text("Test failed (token_refused):")
    expect(page.locator("#command-error")).to_contain_text("invalid_grant")


# --- export, import, delete -----------------------------------------------------------------


def test_export_downloads_the_file_and_import_uploads_it_with_the_conflict_choice(
    page, fake_provider, oauth_client, tmp_path
):
    add_record(page, "Moving", fake_provider, oauth_client)
    page.get_by_role("button", name="Export info to file").click()
    export = dialog(page)
    export.get_by_label("Include secrets").check()
    export.get_by_role("button", name="Export info to file").click()
    expect(export.get_by_role("alert")).to_contain_text("passphrase")  # never in plain text

    export.get_by_label("Passphrase").fill("correct horse battery")
    with page.expect_download() as downloading:
        export.get_by_role("button", name="Export info to file").click()
    saved = tmp_path / "export.json"
    downloading.value.save_as(saved)
    assert downloading.value.suggested_filename == "oauth-export.json"
    document = json.loads(saved.read_text())
    assert document["secrets"] == "encrypted"
    assert oauth_client[1] not in saved.read_text()
    expect(page.get_by_role("status").first).to_contain_text(
        "Exported 1 OAuth record(s) to oauth-export.json with secrets encrypted")
    assert "/tmp" not in page.get_by_role("status").first.inner_text()

    def import_file(on_conflict: str) -> None:
        page.get_by_role("button", name="Import info from file").click()
        importing = dialog(page)
        importing.get_by_label("File").set_input_files(str(saved))
        importing.get_by_label("On conflict").select_option(on_conflict)
        importing.get_by_label("Passphrase").fill("correct horse battery")
        importing.get_by_role("button", name="Import info from file").click()

    import_file("error")
    expect(dialog(page).get_by_role("alert")).to_contain_text("Moving")
    dialog(page).get_by_role("button", name="Cancel").click()

    import_file("rename")
    expect(page.get_by_role("status").first).to_contain_text(
        "from export.json: added 'Moving (2)'; renamed 'Moving' to 'Moving (2)'")
    expect(page.locator("#details")).to_contain_text("Moving → Moving (2)")
    expect(page.get_by_role("list", name="Records").get_by_role("button")).to_have_text(
        ["Moving", "Moving (2)"])
    page.get_by_role("button", name="Moving (2)").click()
    secret_state(page, "Client Secret").to_have_accessible_description(re.compile("^Set"))

    import_file("overwrite")
    expect(page.get_by_role("status").first).to_contain_text("overwrote 'Moving'")


def test_delete_and_key_rotation_ask_first(page, fake_provider, oauth_client):
    add_record(page, "Doomed", fake_provider, oauth_client)
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(dialog(page)).to_contain_text("Delete this OAuth record? Tasks that name it stop working.")
    dialog(page).get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("list", name="Records").get_by_role("button")).to_have_text(["Doomed"])

    page.get_by_role("button", name="Delete", exact=True).click()
    dialog(page).get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_role("status").first).to_have_text("Deleted OAuth record 'Doomed'.")
    expect(page.get_by_role("list", name="Records").get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("heading", name="New record")).to_be_visible()
    expect(page.get_by_label("Record Name", exact=True)).to_have_value("")
    expect(page.get_by_role("button", name="Test", exact=True)).to_be_disabled()

    page.get_by_role("button", name="Rotate encryption key").click()
    expect(dialog(page)).to_contain_text("Re-encrypt every stored secret with a new key?")
    dialog(page).get_by_role("button", name="Cancel").click()
    expect(dialog(page)).to_be_hidden()


# --- another plugin, the action catalogue, the screenshot -----------------------------------


def test_a_second_plugins_editor_renders_and_saves(browser):
    plugin = second_plugin()
    with running_screen(Host.load(extra_plugins=(plugin,))) as (server, _log):
        context = browser.new_context()
        page = context.new_page()
        page.goto(server.url)
        page.get_by_role("navigation").get_by_role("link", name="API keys").click()
        expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()
        page.get_by_label("Key Name", exact=True).fill("deploy")
        page.get_by_label("Service", exact=True).select_option("beta")
        page.get_by_label("API Key", exact=True).fill("api-key-canary-7531")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_role("status").first).to_have_text("Saved API key 'deploy'.")
        expect(page.get_by_role("list", name="Records").get_by_role("button")).to_have_text(
            ["deploy"])
        secret_state(page, "API Key").to_have_accessible_description(re.compile("^Set"))
        assert plugin.api_keys["deploy"] == {"service": "beta", "api_key": "api-key-canary-7531"}
        assert "api-key-canary-7531" not in page.content()

        page.get_by_role("button", name="Delete", exact=True).click()
        dialog(page).get_by_role("button", name="Delete", exact=True).click()
        expect(page.get_by_role("status").first).to_have_text("Deleted API key 'deploy'.")
        assert plugin.api_keys == {}
        context.close()


def test_the_action_catalogue_shows_every_action_as_docs_actions_md_does(page, screen_host):
    page.get_by_role("navigation").get_by_role("link", name="Actions").click()
    expect(page.get_by_role("heading", name="Actions", level=1)).to_be_visible()
    reference = (ROOT / "docs" / "actions.md").read_text()
    specs = list(screen_host.registry.actions.values())
    assert specs
    texts = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('article.action')]"
        ".map(a => [a.id, a.innerText]))")
    for spec in specs:
        text = texts[f"action-{spec.id}"]
        assert spec.title in text and spec.id in text
        if spec.id in reference:
            assert f"### {spec.title}" in reference
        for p in spec.params:
            assert p.name in text and p.help in text
            if p.has_default and p.default is not None:
                assert repr(p.default) in text
            if p.sets_variable:
                assert "sets a variable" in text
        for e in spec.errors:
            assert e.code in text and e.meaning in text


def test_screenshot_of_the_editor(page, fake_provider, oauth_client, tmp_path):
    """Refreshes docs/settings-screen.png when HOSTSIM_UPDATE_SCREENSHOTS=1."""
    page.set_viewport_size({"width": 1200, "height": 1050})
    add_record(page, "Work Mail", fake_provider, oauth_client)
    add_record(page, "Home Mail", fake_provider, oauth_client,
               **{"Client Account": "bob@example.test"})
    page.get_by_role("button", name="Work Mail").click()
    tab = start_get_refresh_token(page)
    expect(tab.locator("body")).to_contain_text("Successfully Authenticated")
    tab.close()
    secret_state(page, "Refresh Token").to_have_accessible_description(re.compile("^Set"))
    shot = tmp_path / "settings-screen.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("HOSTSIM_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, SCREENSHOT)

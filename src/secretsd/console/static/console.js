// secretsd console: progressive enhancement only; every form also works without this file.
// No secret value ever leaves the page except in the Store / Save form posts.
"use strict";
document.documentElement.classList.add("js");

const MAX_VALUE_BYTES = 65536;
// AWS's message for a value over the quota (the server answers the same).
const TOO_LONG =
  "1 validation error detected: Value at 'secretString' failed to satisfy constraint: " +
  "Member must have length less than or equal to 65536";
const NAME_RULES = [
  [(n) => /^[A-Za-z0-9/_+=.@-]*$/.test(n)],
  [(n) => n.length >= 1 && n.length <= 512],
  [(n) => !/^.*-[^-/]{6}$/.test(n)],
];

function $(selector, root) {
  return (root || document).querySelector(selector);
}
function $$(selector, root) {
  return Array.from((root || document).querySelectorAll(selector));
}
function csrf(form) {
  return form.querySelector("input[name=csrf_token]").value;
}
// The console's JSON answer, or the message of the page it sent instead (session ended, form
// expired): parsed, never run.
async function answerOf(response) {
  if ((response.headers.get("content-type") || "").startsWith("application/json")) {
    return response.json();
  }
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  const alert = doc.querySelector("[role=alert]");
  return { error: alert ? alert.textContent.trim() : `The server answered ${response.status}.` };
}
function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}

// -- tabs (any role=tablist) ------------------------------------------------------------------
function selectTab(tab) {
  const list = tab.closest("[role=tablist]");
  for (const other of $$("[role=tab]", list)) {
    const selected = other === tab;
    other.setAttribute("aria-selected", selected ? "true" : "false");
    other.tabIndex = selected ? 0 : -1;
    const panel = document.getElementById(other.getAttribute("aria-controls"));
    if (panel) panel.hidden = !selected;
  }
  list.dispatchEvent(new CustomEvent("tabchange", { detail: tab }));
}
function setUpTabs() {
  for (const list of $$("[role=tablist]")) {
    const tabs = $$("[role=tab]", list);
    for (const tab of tabs) {
      tab.addEventListener("click", () => selectTab(tab));
      tab.addEventListener("keydown", (event) => {
        const i = tabs.indexOf(tab);
        let next = null;
        if (event.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
        if (event.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
        if (next) {
          event.preventDefault();
          next.focus();
          selectTab(next);
        }
      });
    }
    selectTab(tabs.find((t) => t.getAttribute("aria-selected") === "true") || tabs[0]);
  }
}

// -- copy buttons -----------------------------------------------------------------------------
function setUpCopy() {
  for (const button of $$("button.copy")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.firstChild.textContent = "Copied";
      } catch (e) {
        button.firstChild.textContent = "Copy failed";
      }
    });
  }
}

// -- checkboxes that show their fields only when checked ----------------------------------------
function setUpToggles() {
  for (const box of $$("input[data-toggles]")) {
    const target = document.getElementById(box.dataset.toggles);
    const update = () => {
      target.hidden = !box.checked;
    };
    box.addEventListener("change", update);
    update();
  }
}

// -- row editors (key/value, tags, replicas) --------------------------------------------------
function setUpRows(root) {
  root.addEventListener("click", (event) => {
    const add = event.target.closest(".add-row");
    if (add) {
      const rows = document.getElementById(add.dataset.rows);
      const copy = rows.firstElementChild.cloneNode(true);
      for (const input of $$("input", copy)) input.value = "";
      rows.appendChild(copy);
      $("input", copy).focus();
      root.dispatchEvent(new Event("input"));
    }
    const remove = event.target.closest(".remove-row");
    if (remove) {
      const row = remove.closest(".kv-row");
      const rows = row.parentElement;
      if (rows.children.length > 1) row.remove();
      else for (const input of $$("input", row)) input.value = "";
      root.dispatchEvent(new Event("input"));
    }
  });
}
function rowPairs(rowsId, keyName, valueName) {
  const out = [];
  for (const row of $$(`#${rowsId} .kv-row`)) {
    const k = $(`input[name=${keyName}]`, row).value;
    const v = $(`input[name=${valueName}]`, row).value;
    if (k.trim() || v) out.push([k, v]);
  }
  return out;
}

// -- the Store a new secret wizard --------------------------------------------------------------
function wizard(form) {
  const steps = $$("section[data-step]", form);
  const error = $("#store-error");
  let current = Number(form.dataset.step) || 1;

  function showError(message) {
    error.textContent = message;
    error.hidden = !message;
  }
  function show(n, focus) {
    current = n;
    for (const s of steps) s.hidden = Number(s.dataset.step) !== n;
    for (const li of $$("#steps li")) {
      if (Number(li.dataset.for) === n) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    }
    if (n === 4) review();
    if (focus) $(`#s${n}`).focus();
  }

  // Step 1: type, value editors, live size, keys.
  const mode = $("#value_mode");
  const plaintext = $("#plaintext");
  const size = $("#value-size");
  function secretType() {
    return $("input[name=secret_type]:checked", form).value;
  }
  function valueText() {
    if (secretType() !== "other") {
      const creds = {};
      for (const f of ["username", "password", "engine", "host", "port", "dbname"]) {
        const v = $(`#db_${f}`).value;
        if (f === "port" && /^\d+$/.test(v.trim())) creds[f] = Number(v.trim());
        else if (v) creds[f] = v;
      }
      return JSON.stringify(creds);
    }
    if (mode.value === "plaintext") return plaintext.value;
    return JSON.stringify(Object.fromEntries(rowPairs("kv-rows", "kv_key", "kv_value")));
  }
  function updateSize() {
    const used = utf8Length(valueText());
    const over = used > MAX_VALUE_BYTES;
    size.classList.toggle("over", over);
    size.textContent = over
      ? `${used} bytes: ${TOO_LONG}`
      : `${used} of ${MAX_VALUE_BYTES} bytes used.`;
  }
  function updateType() {
    const db = secretType() !== "other";
    $("#db-fields").hidden = !db;
    $("#value-fields").hidden = db;
    updateSize();
  }
  for (const radio of $$("input[name=secret_type]", form)) radio.addEventListener("change", updateType);
  $("#tab-kv").closest("[role=tablist]").addEventListener("tabchange", (event) => {
    const toPlain = event.detail.id === "tab-plaintext";
    if (toPlain && mode.value !== "plaintext") {
      const pairs = rowPairs("kv-rows", "kv_key", "kv_value");
      if (pairs.length) plaintext.value = JSON.stringify(Object.fromEntries(pairs));
    }
    if (!toPlain && mode.value === "plaintext" && plaintext.value.trim()) {
      // Back to key/value only when the text is a flat JSON object (as AWS's console).
      try {
        const parsed = JSON.parse(plaintext.value);
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
          const rows = $("#kv-rows");
          const template = rows.firstElementChild;
          rows.replaceChildren();
          for (const [k, v] of Object.entries(parsed)) {
            const row = template.cloneNode(true);
            $("input[name=kv_key]", row).value = k;
            $("input[name=kv_value]", row).value = typeof v === "string" ? v : JSON.stringify(v);
            rows.appendChild(row);
          }
          if (!rows.children.length) rows.appendChild(template);
        }
      } catch (e) {
        showError("The plaintext is not a JSON object, so it cannot be shown as key/value pairs.");
      }
    }
    mode.value = toPlain ? "plaintext" : "kv";
    updateSize();
  });
  form.addEventListener("input", updateSize);
  setUpRows(form);

  // Add new key: a KMS key and its alias, created in place and chosen.
  const keyForm = $("#new-key-form");
  const keyStatus = $("#new-key-status");
  keyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    keyStatus.textContent = "Creating the key...";
    const body = new URLSearchParams(new FormData(keyForm));
    const response = await fetch(keyForm.action, {
      method: "POST",
      body,
      headers: { Accept: "application/json", "X-CSRF-Token": csrf(keyForm) },
      credentials: "same-origin",
    });
    const answer = await answerOf(response);
    if (!response.ok) {
      keyStatus.textContent = answer.error;
      return;
    }
    const select = $("#kms_key_id");
    const option = new Option(answer.alias.slice("alias/".length), answer.alias, true, true);
    select.add(option);
    select.value = answer.alias;
    keyStatus.textContent = `Created ${answer.alias} (${answer.keyId}) and chose it.`;
  });

  // Step 2: the name rules as you type, the policy checked by ValidateResourcePolicy.
  const name = $("#name");
  const rules = $$("#name-rules li");
  function nameOk() {
    let ok = true;
    NAME_RULES.forEach(([test], i) => {
      const pass = test(name.value);
      rules[i].classList.toggle("invalid", !pass);
      rules[i].classList.toggle("valid", pass);
      ok = ok && pass;
    });
    name.setAttribute("aria-invalid", ok ? "false" : "true");
    return ok;
  }
  name.addEventListener("input", nameOk);
  const findings = $("#policy-findings");
  async function policyOk() {
    const policy = $("#resource_policy").value.trim();
    findings.replaceChildren();
    if (!policy) return true;
    const response = await fetch(`${form.action.replace(/secrets\/new$/, "")}policy/validate`, {
      method: "POST",
      body: new URLSearchParams({ resource_policy: policy, csrf_token: csrf(form) }),
      headers: { Accept: "application/json", "X-CSRF-Token": csrf(form) },
      credentials: "same-origin",
    });
    const answer = await answerOf(response);
    const lines = answer.error ? [answer.error] : answer.findings;
    if (answer.passed) lines.unshift("Policy validation passed.");
    for (const line of lines) {
      const p = document.createElement("p");
      p.textContent = line;
      p.className = answer.passed ? "valid" : "invalid";
      findings.appendChild(p);
    }
    if (!answer.passed) $("#permissions").open = true;
    return Boolean(answer.passed);
  }
  const validate = $("#validate-policy");
  validate.hidden = false;
  validate.addEventListener("click", policyOk);

  // Step 3: the rotation fields show only when rotation is on (setUpToggles).
  const rotation = $("#rotation_enabled");

  // Step 4: the review (never the value) and the sample code for this name.
  function review() {
    const fill = (key, text) => {
      $(`[data-review=${key}]`).textContent = text || "-";
    };
    fill("secret_type", $("input[name=secret_type]:checked", form).parentElement.textContent.trim());
    fill("kms_key_id", $("#kms_key_id").selectedOptions[0].textContent);
    fill("name", name.value);
    fill("description", $("#description").value);
    fill("tags", rowPairs("tag-rows", "tag_key", "tag_value").map(([k, v]) => `${k}: ${v}`).join(", "));
    fill("resource_policy", $("#resource_policy").value.trim() ? "Resource policy attached" : "");
    fill(
      "replicas",
      rowPairs("replica-rows", "replica_region", "replica_key")
        .map(([r, k]) => `${r} (${k || "aws/secretsmanager"})`)
        .join(", ")
    );
    fill("rotation", rotation.checked ? "Enabled" : "Disabled");
    for (const code of $$("code[data-sample]", form)) {
      if (!code.dataset.template) code.dataset.template = code.textContent;
      code.textContent = code.dataset.template.split(form.dataset.marker).join(name.value);
    }
  }

  for (const button of $$("[data-next], [data-prev]", form)) button.hidden = false;
  form.addEventListener("click", async (event) => {
    if (event.target.closest("[data-prev]")) {
      showError("");
      show(current - 1, true);
    }
    if (event.target.closest("[data-next]")) {
      showError("");
      if (current === 2) {
        if (!nameOk()) {
          showError("Enter a valid secret name.");
          name.focus();
          return;
        }
        if (!(await policyOk())) {
          showError("Fix the resource policy before you continue.");
          return;
        }
      }
      show(current + 1, true);
    }
  });

  // Store: posted by the page so a refusal keeps what was typed (the server never echoes it).
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const store = $("#store");
    store.disabled = true;
    showError("");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { Accept: "application/json", "X-CSRF-Token": csrf(form) },
        credentials: "same-origin",
      });
      const answer = await answerOf(response);
      if (answer.location && !(answer.problems && answer.problems.length)) {
        window.location.assign(answer.location);
        return;
      }
      if (answer.location) {
        error.replaceChildren();
        const head = document.createElement("p");
        head.textContent = `Your secret ${answer.stored} has been stored, with these problems:`;
        error.appendChild(head);
        for (const problem of answer.problems) {
          const p = document.createElement("p");
          p.textContent = problem;
          error.appendChild(p);
        }
        const link = document.createElement("a");
        link.href = answer.location;
        link.textContent = "Go to the secrets list";
        error.appendChild(link);
        error.hidden = false;
        error.focus();
        return;
      }
      show(answer.step || current, false);
      showError(answer.error || "The secret was not stored.");
    } catch (e) {
      showError("The console could not reach the server. Try again.");
    }
    store.disabled = false;
  });

  updateType();
  show(current, false);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpTabs();
  setUpCopy();
  setUpToggles();
  const form = $("#wizard");
  if (form) wizard(form);
});

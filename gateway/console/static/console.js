// modelgate console: fetch the server-rendered fragments with the admin token and swap them
// in every few seconds; send the operator's actions to the admin API. The token lives in
// this tab's sessionStorage only, goes out as a bearer header, never in a URL or a cookie.
"use strict";

(function () {
  const KEY = "modelgate.adminToken";
  const body = document.body;
  const page = body.dataset.page;
  const model = body.dataset.model;
  const isPublic = body.dataset.public === "on";
  const refreshMs = Number(body.dataset.refreshMs) || 5000;
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let trafficFilled = false;
  let variantsFilled = false;
  let current = null; // the last model data, for the action forms

  const token = () => sessionStorage.getItem(KEY) || "";
  const apiUrl = () =>
    page === "model"
      ? "/console/api/models/" + encodeURIComponent(model)
      : "/console/api/overview";

  function headers(extra) {
    const h = Object.assign({ "X-Actor": "console" }, extra || {});
    if (token()) h.Authorization = "Bearer " + token();
    return h;
  }

  function showTokenForm(message) {
    $("token-form").hidden = false;
    $("token-error").textContent = message || "";
    $("forget-token").hidden = true;
    $("token-input").focus();
  }

  function hideTokenForm() {
    $("token-form").hidden = true;
    $("token-error").textContent = "";
    $("forget-token").hidden = !token();
  }

  async function refresh() {
    clearTimeout(timer);
    if (!token() && !isPublic) {
      showTokenForm("");
      return;
    }
    let answer;
    try {
      answer = await fetch(apiUrl(), { headers: headers(), cache: "no-store", credentials: "omit" });
    } catch (err) {
      $("load-error").textContent = "Cannot reach the gateway: " + err.message + ". Retrying…";
      timer = setTimeout(refresh, refreshMs);
      return;
    }
    if (answer.status === 401) {
      sessionStorage.removeItem(KEY);
      showTokenForm("The gateway refused this token (401). Enter the admin token again.");
      return;
    }
    const payload = await readJson(answer);
    if (!answer.ok) {
      $("load-error").textContent = describeError(answer.status, payload);
      timer = setTimeout(refresh, refreshMs);
      return;
    }
    $("load-error").textContent = "";
    if (token()) hideTokenForm();
    for (const [id, html] of Object.entries(payload.html)) {
      const region = $(id);
      if (region) {
        region.innerHTML = html; // rendered and escaped by the server
        region.setAttribute("aria-busy", "false");
      }
    }
    if (page === "model") updateForms(payload.data);
    const w = payload.data.worker;
    $("refreshed").textContent =
      "updated " + new Date().toLocaleTimeString() + " · worker " + w.pid + " · generation " + w.generation;
    timer = setTimeout(refresh, refreshMs);
  }

  async function readJson(answer) {
    try {
      return await answer.json();
    } catch (err) {
      return { error: "the gateway answered " + answer.status + " without JSON" };
    }
  }

  function describeError(status, payload) {
    const words = {
      400: "Bad input",
      401: "Not authorised",
      404: "Not found",
      409: "Refused",
      503: "Not ready",
    };
    let text = (words[status] || "Error") + " (" + status + "): " + (payload.error || "no reason given");
    const gate = payload.gate;
    if (gate && Array.isArray(gate.reasons) && gate.reasons.length) {
      text += " — promotion gate: " + gate.reasons.join("; ");
    }
    if (payload.failures) text += " — load failures: " + JSON.stringify(payload.failures);
    return text;
  }

  function updateForms(data) {
    current = data;
    const list = $("version-list");
    const versions = data.model.versions.map((v) => v.version);
    if (list.dataset.versions !== versions.join(",")) {
      list.replaceChildren(
        ...versions.map((v) => {
          const option = document.createElement("option");
          option.value = v;
          return option;
        })
      );
      list.dataset.versions = versions.join(",");
    }
    const weights = $("traffic-weights");
    if (!trafficFilled && document.activeElement !== weights) {
      weights.value = data.traffic_split.map((s) => s.version + "=" + s.weight).join(", ");
      trafficFilled = true;
    }
    const variants = $("experiment-start-variants");
    if (!variantsFilled && !variants.value && document.activeElement !== variants) {
      variants.value = defaultVariants(data.model);
      variantsFilled = true;
    }
  }

  // production against the staging version (else the first other live one), half each
  function defaultVariants(view) {
    const control = view.production_version;
    const others = view.versions.filter((v) => v.version !== control && v.stage !== "archived");
    const candidate = others.find((v) => v.stage === "staging") || others[0];
    return control && candidate ? control + "=50, " + candidate.version + "=50" : "";
  }

  function parseWeights(text) {
    const routes = [];
    for (const part of text.split(",")) {
      if (!part.trim()) continue;
      const [version, weight] = part.split("=").map((s) => s.trim());
      const value = Number(weight);
      if (!version || weight === undefined || weight === "" || !Number.isFinite(value)) {
        throw new Error("write the weights as version=percent pairs, e.g. 1.0.0=90, 1.1.0=10");
      }
      routes.push({ version: version, weight: value });
    }
    return routes;
  }

  function parseVariants(text) {
    const variants = {};
    for (const route of parseWeights(text)) {
      if (route.version in variants) throw new Error(route.version + " is listed twice in the variants");
      variants[route.version] = route.weight;
    }
    return variants;
  }

  // "conversion:binary, revenue:continuous" and "conversion=0.1, revenue=40/25" -> metrics
  function parseMetrics(text, baselinesText) {
    const metrics = [];
    for (const part of text.split(",")) {
      if (!part.trim()) continue;
      const [name, kind, extra] = part.split(":").map((s) => s.trim());
      if (!name || !kind || extra !== undefined) throw new Error("write the metrics as name:kind, e.g. conversion:binary");
      metrics.push({ name: name, kind: kind });
    }
    for (const part of baselinesText.split(",")) {
      if (!part.trim()) continue;
      const [name, given, extra] = part.split("=").map((s) => s.trim());
      const numbers = (given || "").split("/").map((s) => (s.trim() === "" ? NaN : Number(s)));
      if (!name || extra !== undefined || numbers.length > 2 || !numbers.every(Number.isFinite)) {
        throw new Error("write the baselines as name=rate or name=mean/sd, e.g. conversion=0.1");
      }
      const metric = metrics.find((m) => m.name === name);
      if (!metric) throw new Error("a baseline for " + name + ", which is not among the metrics");
      metric.baseline = numbers[0];
      if (numbers.length === 2) metric.sd = numbers[1];
    }
    return metrics;
  }

  function experimentBody(value, reason) {
    const body = {
      variants: parseVariants(value("experiment-start-variants")),
      metrics: parseMetrics(value("experiment-start-metrics"), value("experiment-start-baselines")),
      mde: Number(value("experiment-start-mde")),
      mde_kind: value("experiment-start-mde-kind"),
      promote_winner: $("experiment-start-promote").checked,
      reason: reason,
    };
    for (const key of ["alpha", "power"]) {
      const given = value("experiment-start-" + key); // blank: the API's default
      if (given) body[key] = Number(given);
    }
    return body;
  }

  function parseSteps(text) {
    return text.split(",").filter((s) => s.trim()).map((s) => {
      const value = Number(s.trim());
      if (!Number.isFinite(value)) throw new Error("steps are percentages, e.g. 5, 25, 50, 100");
      return value;
    });
  }

  async function currentTraffic(base) {
    const answer = await fetch(base + "/traffic", { headers: headers(), cache: "no-store" });
    const payload = await readJson(answer);
    if (!answer.ok) throw new Error(describeError(answer.status, payload));
    return { routes: payload.routes, shadow: payload.shadow, challenger: payload.challenger, sticky: payload.sticky };
  }

  // action name -> [method, path under /admin/models/{name}, body builder]
  async function request(action, value) {
    const base = "/admin/models/" + encodeURIComponent(model);
    const reason = value(action + "-reason");
    switch (action) {
      case "rollback":
        return ["POST", base + "/rollback", { reason: reason }];
      case "promote":
        return [
          "POST",
          base + "/versions/" + encodeURIComponent(value("promote-version")) + "/stage",
          { stage: "production", reason: reason },
        ];
      case "traffic": {
        const traffic = await currentTraffic(base);
        traffic.routes = parseWeights(value("traffic-weights"));
        return ["PUT", base + "/traffic", Object.assign(traffic, { reason: reason })];
      }
      case "shadow-add": {
        const traffic = await currentTraffic(base);
        const version = value("shadow-add-version");
        const sample = Number(value("shadow-add-sample")) / 100;
        traffic.shadow = traffic.shadow.filter((s) => s.version !== version);
        traffic.shadow.push({ version: version, sample: sample });
        return ["PUT", base + "/traffic", Object.assign(traffic, { reason: reason })];
      }
      case "shadow-remove": {
        const traffic = await currentTraffic(base);
        const version = value("shadow-remove-version");
        if (!traffic.shadow.some((s) => s.version === version)) {
          throw new Error(version + " is not a shadow of " + model);
        }
        traffic.shadow = traffic.shadow.filter((s) => s.version !== version);
        return ["PUT", base + "/traffic", Object.assign(traffic, { reason: reason })];
      }
      case "rollout-start":
        return [
          "POST",
          base + "/rollout",
          {
            candidate: value("rollout-start-candidate"),
            steps: parseSteps(value("rollout-start-steps")),
            interval_s: Number(value("rollout-start-interval")),
          },
        ];
      case "rollout-cancel":
        return ["DELETE", base + "/rollout?reason=" + encodeURIComponent(reason), null];
      case "experiment-start":
        return ["POST", base + "/experiment", experimentBody(value, reason)];
      case "experiment-stop":
        return ["DELETE", base + "/experiment", { reason: reason }];
      default:
        throw new Error("unknown action " + action);
    }
  }

  function describeSuccess(action, payload) {
    if (action === "rollout-start") {
      return "Rollout started: " + payload.spec.candidate + " at " + payload.progress.canary_weight + " %, step 1 of " + payload.progress.steps + ".";
    }
    if (action === "rollout-cancel") return "Rollout cancelled: all traffic back to " + payload.spec.champion + ".";
    const routes = (payload.traffic && payload.traffic.routes) || [];
    const split = routes.map((r) => r.version + " " + r.weight + " %").join(", ") || "100 % to production";
    if (action === "experiment-start") {
      return (
        "Experiment " + payload.id + " started: traffic " + split + " (control " + payload.control +
        ", sticky by X-Routing-Key); planned " + payload.plan.n_per_variant + " outcomes per variant."
      );
    }
    if (action === "experiment-stop") {
      const verdict = payload.verdict || {};
      const promotion = payload.promotion ? ", promotion of " + payload.promotion.version + " " + payload.promotion.status : "";
      return (
        "Experiment " + payload.id + " stopped: " + verdict.outcome +
        (verdict.winner ? " (winner " + verdict.winner + ")" : "") + promotion + "; traffic " + split + "."
      );
    }
    const verbs = {
      rollback: "Rolled back",
      promote: "Promoted",
      traffic: "Traffic set",
      "shadow-add": "Shadow set",
      "shadow-remove": "Shadow removed",
    };
    return (
      (verbs[action] || "Done") + ": production is " + payload.production + ", traffic " + split +
      (payload.changed === false ? " (nothing changed)" : "") + " (generation " + payload.generation + ")."
    );
  }

  async function act(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const action = form.dataset.action;
    const result = $("action-result");
    if (!token()) {
      showTokenForm("Actions need the admin token.");
      return;
    }
    const value = (id) => $(id).value.trim();
    if (!value(action + "-reason")) {
      result.className = "result error";
      result.textContent = "Give a reason: it goes to the audit log.";
      $(action + "-reason").focus();
      return;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    result.className = "result";
    result.textContent = "Working…";
    try {
      const [method, url, payload] = await request(action, value);
      const init = { method: method, headers: headers({ "Content-Type": "application/json" }), cache: "no-store" };
      if (payload !== null) init.body = JSON.stringify(payload);
      const answer = await fetch(url, init);
      const reply = await readJson(answer);
      if (answer.status === 401) {
        sessionStorage.removeItem(KEY);
        showTokenForm("The gateway refused this token (401). Enter the admin token again.");
      }
      if (answer.ok) {
        result.className = "result ok";
        result.textContent = describeSuccess(action, reply);
        $(action + "-reason").value = "";
        trafficFilled = false;
      } else {
        result.className = "result error";
        result.textContent = describeError(answer.status, reply);
      }
    } catch (err) {
      result.className = "result error";
      result.textContent = err.message;
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    $("token-input").value = "";
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    refresh();
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    showTokenForm("Token forgotten.");
  });
  for (const form of document.querySelectorAll("form.action")) {
    form.addEventListener("submit", act);
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  refresh();
})();

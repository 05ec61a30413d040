/* The students' class survey: skip logic, constraints and choice filters as the server checks
 * them (anshim/prevention/expressions.py is the same grammar), and an offline queue.
 *
 * Anonymity: the only thing kept on the phone is a random key per class session (so a resend
 * after a network drop is recognised by the server and never doubles) and, until it is sent,
 * the answer sheet itself. Nothing identifies the student; the help request has its own key.
 */
(function () {
  "use strict";

  // --- Expressions ----------------------------------------------------------------------
  var TOKEN = /\s*(?:(\$\{[A-Za-z_][\w.-]*\})|(\d+(?:\.\d+)?|\.\d+)|('[^']*'|"[^"]*")|(!=|<=|>=|=|<|>|\+|-|\*|\(|\)|,)|([A-Za-z_][\w.-]*(?:\(\))?)|(\.))/y;
  var KINDS = ["ref", "num", "str", "op", "name", "dot"];
  var LEVELS = [["or"], ["and"], ["=", "!="], ["<", "<=", ">", ">="], ["+", "-"], ["*", "div", "mod"]];
  var cache = {};

  function tokens(text) {
    var out = [], pos = 0, m;
    text = text.trim();
    while (pos < text.length) {
      TOKEN.lastIndex = pos;
      m = TOKEN.exec(text);
      if (!m || TOKEN.lastIndex === pos) throw new Error("cannot read " + text.slice(pos));
      for (var k = 1; k <= 6; k++) if (m[k] !== undefined) { out.push([KINDS[k - 1], m[k]]); break; }
      pos = TOKEN.lastIndex;
      while (pos < text.length && /\s/.test(text[pos])) pos++;
    }
    return out;
  }

  function parse(text) {
    if (cache[text]) return cache[text];
    var toks = tokens(text), i = 0;
    function peek() { return toks[i]; }
    function take() { if (i >= toks.length) throw new Error("too short"); return toks[i++]; }
    function binary(level) {
      if (level === LEVELS.length) return unary();
      var node = binary(level + 1), t;
      while ((t = peek()) && LEVELS[level].indexOf(t[1]) >= 0 && (t[0] === "op" || t[0] === "name")) {
        take();
        node = { op: t[1], args: [node, binary(level + 1)] };
      }
      return node;
    }
    function unary() {
      var t = peek();
      if (t && t[1] === "-") { take(); return { op: "neg", args: [unary()] }; }
      return primary();
    }
    function primary() {
      var t = take(), kind = t[0], v = t[1];
      if (kind === "num") return { op: "lit", value: parseFloat(v) };
      if (kind === "str") return { op: "lit", value: v.slice(1, -1) };
      if (kind === "ref") return { op: "ref", value: v.slice(2, -1) };
      if (kind === "dot") return { op: "dot" };
      if (v === "(") { var n = binary(0); take(); return n; }
      if (kind === "name") {
        if (/\(\)$/.test(v)) return { op: "call", value: v.slice(0, -2), args: [] };
        if (peek() && peek()[1] === "(") {
          take();
          var args = [];
          if (peek() && peek()[1] !== ")") {
            args.push(binary(0));
            while (peek() && peek()[1] === ",") { take(); args.push(binary(0)); }
          }
          take();
          return { op: "call", value: v, args: args };
        }
        return { op: "name", value: v };
      }
      throw new Error("unexpected " + v);
    }
    var tree = binary(0);
    cache[text] = tree;
    return tree;
  }

  function num(v) {
    if (typeof v === "boolean") return v ? 1 : 0;
    if (typeof v === "number") return v;
    return String(v).trim() === "" ? NaN : Number(v);
  }
  function str(v) {
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "number") return isNaN(v) ? "NaN" : String(v);
    return v;
  }
  function bool(v) {
    if (typeof v === "boolean") return v;
    if (typeof v === "number") return !(v === 0 || isNaN(v));
    return v !== "";
  }
  function asValue(a) {
    if (a === undefined || a === null) return "";
    if (Array.isArray(a)) return a.join(" ");
    return a;
  }
  function compare(op, a, b) {
    if (op === "=" || op === "!=") {
      var eq;
      if (typeof a === "boolean" || typeof b === "boolean") eq = bool(a) === bool(b);
      else if (typeof a === "number" || typeof b === "number") eq = num(a) === num(b);
      else eq = a === b;
      return op === "=" ? eq : !eq;
    }
    var x = num(a), y = num(b);
    if (typeof a === "string" && typeof b === "string" && isNaN(x) && isNaN(y)) { x = a; y = b; }
    if (op === "<") return x < y;
    if (op === "<=") return x <= y;
    if (op === ">") return x > y;
    return x >= y;
  }
  function evaluate(text, answers, current, row) {
    function ev(n) {
      switch (n.op) {
        case "lit": return n.value;
        case "ref": return asValue(answers[n.value]);
        case "dot": return asValue(current);
        case "name": return asValue((row || {})[n.value]);
        case "neg": return -num(ev(n.args[0]));
        case "and": return bool(ev(n.args[0])) && bool(ev(n.args[1]));
        case "or": return bool(ev(n.args[0])) || bool(ev(n.args[1]));
        case "=": case "!=": case "<": case "<=": case ">": case ">=":
          return compare(n.op, ev(n.args[0]), ev(n.args[1]));
        case "+": return num(ev(n.args[0])) + num(ev(n.args[1]));
        case "-": return num(ev(n.args[0])) - num(ev(n.args[1]));
        case "*": return num(ev(n.args[0])) * num(ev(n.args[1]));
        case "div": case "mod":
          var a = num(ev(n.args[0])), b = num(ev(n.args[1]));
          if (b === 0) return NaN;
          return n.op === "div" ? a / b : a % b;
        case "call": return call(n.value, n.args);
      }
      throw new Error("unknown " + n.op);
    }
    function call(name, args) {
      if (name === "if") return bool(ev(args[0])) ? ev(args[1]) : ev(args[2]);
      if (name === "coalesce") { var f = ev(args[0]); return str(f) !== "" ? f : ev(args[1]); }
      var v = args.map(ev);
      switch (name) {
        case "true": return true;
        case "false": return false;
        case "today": return new Date().toISOString().slice(0, 10);
        case "selected": return str(v[0]).split(/\s+/).indexOf(str(v[1])) >= 0;
        case "count-selected": return str(v[0]).split(/\s+/).filter(Boolean).length;
        case "not": return !bool(v[0]);
        case "boolean": return bool(v[0]);
        case "string-length": return str(v[0]).length;
        case "contains": return str(v[0]).indexOf(str(v[1])) >= 0;
        case "starts-with": return str(v[0]).indexOf(str(v[1])) === 0;
        case "regex": return new RegExp(str(v[1])).test(str(v[0]));
        case "number": return num(v[0]);
        case "int": var n = num(v[0]); return isNaN(n) ? n : Math.trunc(n);
        case "string": return str(v[0]);
      }
      throw new Error("unsupported " + name);
    }
    return ev(parse(text));
  }
  function truthy(text, answers, current, row) {
    try { return bool(evaluate(text, answers, current, row)); } catch (e) { return true; }
  }
  window.AnshimSurveyExpressions = { evaluate: evaluate, truthy: truthy };

  // --- The form -------------------------------------------------------------------------
  var app = document.getElementById("survey-app");
  if (!app) return;
  var form = document.getElementById("survey-form");
  var code = app.dataset.code;
  var statusBox = document.getElementById("survey-status");
  var KEY = "anshim.survey.key." + code;
  var DONE = "anshim.survey.done." + code;
  var QUEUE = "anshim.survey.queue";

  function randomKey() {
    var bytes = new Uint8Array(24);
    crypto.getRandomValues(bytes);
    return btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function store(name, value) { try { localStorage.setItem(name, value); } catch (e) { /* private mode */ } }
  function load(name) { try { return localStorage.getItem(name); } catch (e) { return null; } }
  function deviceKey() {
    var k = load(KEY);
    if (!k) { k = randomKey(); store(KEY, k); }
    return k;
  }
  function queue() { try { return JSON.parse(load(QUEUE) || "[]"); } catch (e) { return []; } }
  function saveQueue(q) { store(QUEUE, JSON.stringify(q)); }
  function csrf() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  var items = Array.prototype.slice.call(form.querySelectorAll("[data-name]"));

  function valueOf(el) {
    var kind = el.dataset.kind;
    if (kind === "select_one") {
      var c = el.querySelector("input:checked");
      return c ? c.value : "";
    }
    if (kind === "select_multiple") {
      return Array.prototype.map.call(el.querySelectorAll("input:checked"), function (i) { return i.value; });
    }
    var f = el.querySelector("input, textarea");
    if (!f) return "";
    var v = f.value.trim();
    if ((kind === "integer" || kind === "decimal") && v !== "") return Number(v);
    return v;
  }
  function isEmpty(v) { return v === "" || v === null || v === undefined || (Array.isArray(v) && !v.length); }

  /* Walk the form in order: relevance (a group hides its questions), choice filters, and the
   * answers so far (skipped questions count as empty, as in the analysis). */
  function update() {
    var answers = {}, hidden = [];
    items.forEach(function (el) {
      var inHidden = hidden.some(function (g) { return g.contains(el); });
      var relevant = !inHidden && (!el.dataset.relevant || truthy(el.dataset.relevant, answers));
      el.hidden = !relevant;
      if (!relevant) { if (el.dataset.kind === "group") hidden.push(el); return; }
      if (el.dataset.choiceFilter) {
        el.querySelectorAll("label.choice").forEach(function (label) {
          var row = {};
          try { row = JSON.parse(label.dataset.columns || "{}"); } catch (e) { /* none */ }
          var show = truthy(el.dataset.choiceFilter, answers, null, row);
          label.hidden = !show;
          if (!show) label.querySelector("input").checked = false;
        });
      }
      if (el.dataset.kind !== "group" && el.dataset.kind !== "note") {
        var v = valueOf(el);
        if (!isEmpty(v)) answers[el.dataset.name] = v;
      }
    });
    return answers;
  }

  function showError(el, message) {
    var p = el.querySelector(".field-error");
    var field = el.querySelector("input, textarea");
    if (p) { p.textContent = message; p.hidden = !message; }
    if (field && el.dataset.kind !== "select_one" && el.dataset.kind !== "select_multiple") {
      if (message) { field.setAttribute("aria-invalid", "true"); field.setAttribute("aria-describedby", p.id); }
      else { field.removeAttribute("aria-invalid"); }
    }
  }

  function validate() {
    var answers = update(), first = null;
    items.forEach(function (el) {
      var kind = el.dataset.kind;
      if (kind === "group" || kind === "note") return;
      var message = "";
      if (!el.hidden) {
        var v = valueOf(el);
        if (isEmpty(v)) {
          if (el.dataset.required) message = app.dataset.msgRequired;
        } else if ((kind === "integer" || kind === "decimal") && isNaN(v)) {
          message = app.dataset.msgNumber;
        } else if (kind === "integer" && Math.floor(v) !== v) {
          message = app.dataset.msgNumber;
        } else if (el.dataset.constraint && !truthy(el.dataset.constraint, answers, v)) {
          message = el.dataset.constraintMessage || app.dataset.msgConstraint;
        }
      }
      showError(el, message);
      if (message && !first) first = el;
    });
    return { answers: answers, first: first };
  }

  function done() {
    store(DONE, "1");
    form.hidden = true;
    document.getElementById("survey-done").hidden = false;
    var title = document.getElementById("done-title");
    if (title) title.focus();
  }

  var sending = false;
  function flush() {
    var q = queue();
    if (!q.length || sending) return;
    sending = true;
    var item = q[0];
    fetch(item.url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ key: item.key, answers: item.answers })
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        sending = false;
        if (response.ok) {  // 201 stored, or 200 already stored (a resend): never twice
          saveQueue(queue().filter(function (x) { return x.key !== item.key; }));
          if (item.code === code) done();
          flush();
          return;
        }
        if (response.status >= 500 || response.status === 403) { offline(); return; }
        // Refused for good (closed, invalid): drop it, say why.
        saveQueue(queue().filter(function (x) { return x.key !== item.key; }));
        if (item.code !== code) { flush(); return; }
        if (body.errors) {
          Object.keys(body.errors).forEach(function (name) {
            var el = form.querySelector('[data-name="' + name + '"]');
            if (el) showError(el, body.errors[name] === "required" ? app.dataset.msgRequired : app.dataset.msgConstraint);
          });
          statusBox.textContent = app.dataset.msgError;
        } else {
          statusBox.textContent = body.message || app.dataset.msgClosed;
        }
      });
    }).catch(function () { sending = false; offline(); });
  }
  function offline() { statusBox.textContent = app.dataset.msgOffline; }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var result = validate();
    if (result.first) {
      statusBox.textContent = app.dataset.msgError;
      var target = result.first.querySelector("input, textarea");
      if (target) target.focus();
      return;
    }
    var key = deviceKey();
    var q = queue().filter(function (x) { return x.key !== key; });
    q.push({ url: app.dataset.submitUrl, code: code, key: key, answers: result.answers });
    saveQueue(q);  // kept on the phone until the server has it
    statusBox.textContent = app.dataset.msgSending;
    flush();
  });
  window.addEventListener("online", flush);
  setInterval(function () { if (queue().length) flush(); }, 5000);

  // --- The help card --------------------------------------------------------------------
  function wireHelp(helpForm) {
    if (!helpForm) return;
    var helpKey = randomKey();  // its own key: nothing ties the request to the answers
    helpForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var err = helpForm.querySelector("#help-error");
      var contact = helpForm.querySelector("input[name=contact]:checked");
      var detail = helpForm.querySelector("input[name=detail]").value.trim();
      if (!contact || !detail) { err.textContent = app.dataset.msgHelpError; err.hidden = false; return; }
      fetch(app.dataset.helpUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
        body: JSON.stringify({ key: helpKey, contact: contact.value, detail: detail,
                               message: helpForm.querySelector("textarea[name=message]").value })
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (response.ok) {
            helpForm.hidden = true;
            document.getElementById("help-sent").hidden = false;
          } else { err.textContent = body.message || app.dataset.msgHelpError; err.hidden = false; }
        });
      }).catch(function () { err.textContent = app.dataset.msgOffline; err.hidden = false; });
    });
  }
  wireHelp(document.getElementById("help-form"));

  update();
  if (load(DONE) && !queue().some(function (x) { return x.code === code; })) done();
  flush();
})();

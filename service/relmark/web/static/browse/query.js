// The query page: CodeMirror on the textarea, results fetched from /sparql and
// /api/queries/<name> without leaving the page. Without this file the forms submit.
(function () {
  "use strict";
  var editor = null;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  // The page's words and language: browse.js (loaded first on every page) reads them.
  var page = window.relmarkPage;
  function words() { return page().words || {}; }
  var NAMESPACES = {
    "rm:": "https://w3id.org/relmark/ontology#", "demo:": "https://w3id.org/relmark/demo/",
    "rdf:": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "rdfs:": "http://www.w3.org/2000/01/rdf-schema#",
    "owl:": "http://www.w3.org/2002/07/owl#", "skos:": "http://www.w3.org/2004/02/skos/core#",
    "xsd:": "http://www.w3.org/2001/XMLSchema#"
  };
  function shortIri(iri) {
    for (var prefix in NAMESPACES) {
      if (iri.indexOf(NAMESPACES[prefix]) === 0 && iri.length > NAMESPACES[prefix].length) {
        return prefix + iri.slice(NAMESPACES[prefix].length);
      }
    }
    return iri;
  }
  function cell(term) {
    var td = el("td");
    if (!term) { td.appendChild(el("span", "none", "–")); return td; }
    if (term.type === "uri" || term.type === "iri") {
      var a = el("a", "", term.label || shortIri(term.value));
      a.href = "/resource?iri=" + encodeURIComponent(term.value);
      a.title = term.value;
      td.appendChild(a);
    } else {
      td.appendChild(el("span", "literal", term.value));
      var lang = term["xml:lang"] || term.lang;
      if (lang) { td.appendChild(el("span", "tag", " @" + lang)); }
    }
    return td;
  }
  function table(columns, rows, caption) {
    var w = words();
    var t = el("table", "results");
    t.appendChild(el("caption", "", caption + " (" + rows.length + " " + (w.rows || "rows") + ")"));
    var head = el("thead"), tr = el("tr");
    columns.forEach(function (c) { var th = el("th", "", c); th.scope = "col"; tr.appendChild(th); });
    head.appendChild(tr); t.appendChild(head);
    var body = el("tbody");
    rows.forEach(function (row) {
      var r = el("tr");
      columns.forEach(function (c) { r.appendChild(cell(row[c])); });
      body.appendChild(r);
    });
    t.appendChild(body);
    return t;
  }
  function showError(target, text) {
    target.textContent = "";
    var p = el("p", "error", text);
    p.setAttribute("role", "alert");
    target.appendChild(p);
  }
  function errorText(response) {
    return response.text().then(function (body) {
      try { var data = JSON.parse(body); return data.error + ": " + (data.detail || "") + (data.where ? " (" + data.where + ")" : ""); }
      catch (e) { return response.status + " " + body.slice(0, 300); }
    });
  }

  function runEditor(form, target) {
    var query = editor ? editor.getValue() : form.querySelector("textarea").value;
    target.textContent = "…";
    fetch(form.dataset.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded",
                 Accept: "application/sparql-results+json, text/turtle;q=0.9" },
      body: new URLSearchParams({ query: query }).toString()
    }).then(function (response) {
      if (!response.ok) { return errorText(response).then(function (text) { showError(target, text); }); }
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("json") < 0) {
        return response.text().then(function (text) { target.textContent = ""; target.appendChild(el("pre", "turtle", text)); });
      }
      return response.json().then(function (data) {
        target.textContent = "";
        if (data.boolean !== undefined) { target.appendChild(el("p", "boolean", String(data.boolean))); return; }
        target.appendChild(table(data.head.vars, data.results.bindings, words().results || "Results"));
        var p = el("p"), a = el("a", "csv", (words().download || "Download") + " CSV");
        a.href = form.dataset.endpoint + "?" + new URLSearchParams({ query: query, format: "csv" }).toString();
        p.appendChild(a); target.appendChild(p);
      });
    }).catch(function (error) { showError(target, String(error)); });
  }

  function runNamed(form) {
    var target = form.parentElement.querySelector(".named-results");
    var params = new URLSearchParams(new FormData(form));
    Array.from(params.keys()).forEach(function (key) { if (params.get(key) === "") { params.delete(key); } });
    target.textContent = "…";
    fetch(form.dataset.api + "?" + params.toString(), { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { return errorText(response).then(function (text) { showError(target, text); }); }
        return response.json().then(function (data) {
          target.textContent = "";
          var title = form.closest("details").querySelector("summary").firstChild.textContent.trim();
          target.appendChild(table(data.columns, data.rows, title));
          params.set("format", "csv");
          var p = el("p"), a = el("a", "csv", (words().download || "Download") + " CSV");
          a.href = form.dataset.api + "?" + params.toString();
          p.appendChild(a); target.appendChild(p);
        });
      })
      .catch(function () { form.submit(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("editor-form");
    var target = document.getElementById("editor-results");
    var textarea = document.getElementById("query-text");
    if (window.CodeMirror && textarea) {
      editor = window.CodeMirror.fromTextArea(textarea, { mode: "application/sparql-query", lineNumbers: true });
    }
    var examples = document.getElementById("examples");
    var texts = JSON.parse(document.getElementById("example-texts").textContent);
    examples.addEventListener("change", function () {
      var text = texts[Number(examples.value)] || "";
      if (editor) { editor.setValue(text); } else { textarea.value = text; }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      runEditor(form, target);
    });
    if (location.hash.indexOf("#q-") === 0) {
      var wanted = document.getElementById(decodeURIComponent(location.hash.slice(1)));
      if (wanted && wanted.tagName === "DETAILS") { wanted.open = true; }
    }
    document.querySelectorAll("form.named-form").forEach(function (named) {
      named.addEventListener("submit", function (event) { event.preventDefault(); runNamed(named); });
    });
  });
})();

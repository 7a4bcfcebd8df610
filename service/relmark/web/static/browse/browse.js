// relmark pages: progressive enhancement. Without this file every page still works.
(function () {
  "use strict";

  // --- the class tree: WAI-ARIA tree pattern (arrows, Home/End, Enter, * expands siblings)
  function enhanceTree(tree) {
    tree.setAttribute("role", "tree");
    var items = Array.prototype.slice.call(tree.querySelectorAll("li"));
    items.forEach(function (li) {
      li.setAttribute("role", "treeitem");
      li.tabIndex = -1;
      var link = li.querySelector(":scope > a");
      if (link) { link.tabIndex = -1; }
      var group = li.querySelector(":scope > ul");
      var twisty = document.createElement("span");
      twisty.className = "twisty";
      twisty.setAttribute("aria-hidden", "true");
      li.insertBefore(twisty, li.firstChild);
      if (group) {
        group.setAttribute("role", "group");
        li.setAttribute("aria-expanded", "false");
        twisty.textContent = "▸";
        twisty.addEventListener("click", function (event) { event.stopPropagation(); toggle(li); });
      }
    });
    if (items.length) { items[0].tabIndex = 0; }
    tree.addEventListener("keydown", function (event) { onKey(tree, event); });
    tree.addEventListener("click", function (event) {
      var li = event.target.closest("[role=treeitem]");
      if (li) { focusItem(tree, li); }
    });
    var tools = document.querySelector(".tree-tools");
    if (tools) {
      tools.hidden = false;
      tools.addEventListener("click", function (event) {
        var what = event.target.getAttribute("data-tree");
        if (!what) { return; }
        items.forEach(function (li) { if (li.hasAttribute("aria-expanded")) { setExpanded(li, what === "expand"); } });
      });
    }
  }
  function setExpanded(li, open) {
    li.setAttribute("aria-expanded", open ? "true" : "false");
    var twisty = li.querySelector(":scope > .twisty");
    if (twisty) { twisty.textContent = open ? "▾" : "▸"; }
  }
  function toggle(li) { setExpanded(li, li.getAttribute("aria-expanded") !== "true"); }
  function visibleItems(tree) {
    return Array.prototype.filter.call(tree.querySelectorAll("[role=treeitem]"), function (li) {
      var parent = li.parentElement.closest("[role=treeitem]");
      while (parent) {
        if (parent.getAttribute("aria-expanded") === "false") { return false; }
        parent = parent.parentElement.closest("[role=treeitem]");
      }
      return true;
    });
  }
  function focusItem(tree, li) {
    tree.querySelectorAll("[role=treeitem]").forEach(function (other) { other.tabIndex = -1; });
    li.tabIndex = 0;
    li.focus();
  }
  function onKey(tree, event) {
    var li = event.target.closest("[role=treeitem]");
    if (!li) { return; }
    var visible = visibleItems(tree);
    var index = visible.indexOf(li);
    var expandable = li.hasAttribute("aria-expanded");
    var open = li.getAttribute("aria-expanded") === "true";
    var handled = true;
    switch (event.key) {
      case "ArrowDown": if (index < visible.length - 1) { focusItem(tree, visible[index + 1]); } break;
      case "ArrowUp": if (index > 0) { focusItem(tree, visible[index - 1]); } break;
      case "ArrowRight":
        if (expandable && !open) { setExpanded(li, true); }
        else if (expandable) { focusItem(tree, li.querySelector("[role=treeitem]")); }
        break;
      case "ArrowLeft":
        if (expandable && open) { setExpanded(li, false); }
        else {
          var parent = li.parentElement.closest("[role=treeitem]");
          if (parent) { focusItem(tree, parent); }
        }
        break;
      case "Home": focusItem(tree, visible[0]); break;
      case "End": focusItem(tree, visible[visible.length - 1]); break;
      case "Enter": var link = li.querySelector(":scope > a"); if (link) { link.click(); } break;
      case "*":
        Array.prototype.forEach.call(li.parentElement.children, function (sibling) {
          if (sibling.hasAttribute("aria-expanded")) { setExpanded(sibling, true); }
        });
        break;
      default: handled = false;
    }
    if (handled) { event.preventDefault(); }
  }

  // --- "why?" and "why not?": fetch the explanation when a <details> first opens
  function shortIri(iri) {
    var rm = "https://w3id.org/relmark/ontology#";
    if (iri.indexOf(rm) === 0) { return "rm:" + iri.slice(rm.length); }
    if (iri === "http://www.w3.org/1999/02/22-rdf-syntax-ns#type") { return "a"; }
    var demo = "https://w3id.org/relmark/demo/";
    if (iri.indexOf(demo) === 0) { return "demo:" + iri.slice(demo.length); }
    return iri;
  }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function termNode(term) {
    if (term.type === "uri") {
      var a = el("a", "", shortIri(term.value));
      a.href = "/resource?iri=" + encodeURIComponent(term.value);
      return a;
    }
    return el("span", "literal", term.type === "triple" ? "<<…>>" : String(term.value));
  }
  // The page's words and language, from its <script type="application/json"> data block
  // (data, not script: the Content-Security-Policy allows no inline script).
  function page() {
    if (!window.RELMARK) {
      var data = document.getElementById("relmark-page");
      try { window.RELMARK = data ? JSON.parse(data.textContent) : {}; } catch (e) { window.RELMARK = {}; }
    }
    return window.RELMARK;
  }
  window.relmarkPage = page;  // query.js reads the same data block
  function words() { return page().words || {}; }
  function explanationNode(node) {
    var w = words();
    var li = el("li", node.status === "asserted" ? "leaf asserted" : "inferred");
    var triple = el("span", "triple");
    ["subject", "predicate", "object"].forEach(function (key, i) {
      if (i) { triple.appendChild(document.createTextNode(" ")); }
      triple.appendChild(termNode(node.triple[key]));
    });
    li.appendChild(triple);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "badge " + node.status, w[node.status] || node.status));
    if (node.status === "asserted") {
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "graphs", (node.graphs || []).map(function (g) { return g || "default graph"; }).join(", ")));
      return li;
    }
    li.appendChild(document.createTextNode(" " + (w.by_rule || "by rule") + " "));
    li.appendChild(el("code", "", node.rule));
    li.appendChild(document.createTextNode(": " + node.label));
    li.appendChild(el("p", "why-text", node.why));
    if (node.sources && node.sources.length) {
      var cited = el("p", "source", (w.sources || "Sources") + ": ");
      node.sources.forEach(function (s, i) {
        if (i) { cited.appendChild(document.createTextNode("; ")); }
        if (s.iri) {
          var a = el("a", "", s.text);
          a.href = s.iri;
          a.rel = "external";
          cited.appendChild(a);
        } else {
          cited.appendChild(document.createTextNode(s.text));
        }
      });
      li.appendChild(cited);
    }
    (node.thresholds || []).forEach(function (t) {
      li.appendChild(el("p", "threshold", (w.threshold || "threshold") + ": " + t.label + " = " + t.value.value));
    });
    var ul = el("ul");
    (node.premises || []).forEach(function (p) { ul.appendChild(explanationNode(p)); });
    li.appendChild(ul);
    return li;
  }
  function whyNotNode(data) {
    var w = words();
    var box = el("div", "why-not");
    if (data.nearest) { box.appendChild(el("p", "nearest", data.nearest)); }
    (data.candidates || []).forEach(function (c) {
      var section = el("div", "candidate");
      section.appendChild(el("p", "", c.label + (c.rule ? " (" + c.rule + ")" : "")));
      if (c.why) { section.appendChild(el("p", "why-text", c.why)); }
      [["unmet", c.unmet], ["met", c.met]].forEach(function (pair) {
        if (!pair[1] || !pair[1].length) { return; }
        var ul = el("ul", pair[0]);
        pair[1].forEach(function (item) { ul.appendChild(el("li", "", (w[pair[0]] || pair[0]) + ": " + item.text)); });
        section.appendChild(ul);
      });
      box.appendChild(section);
    });
    if (!(data.candidates || []).length) { box.appendChild(el("p", "", JSON.stringify(data))); }
    return box;
  }
  function enhanceWhy(details) {
    details.addEventListener("toggle", function () {
      if (!details.open || details.getAttribute("data-loaded")) { return; }
      details.setAttribute("data-loaded", "loading");
      var lang = page().lang || "en";
      var params = new URLSearchParams({ iri: details.dataset.iri, "class": details.dataset["class"], lang: lang });
      var mode = details.dataset.mode;
      if (mode === "not") { params.set("why", "not"); }
      var body = details.querySelector(".why-body");
      fetch("/api/explain?" + params.toString(), { headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        })
        .then(function (data) {
          var content;
          if (mode === "not") { content = whyNotNode(data); }
          else { content = el("ul", "explanation"); content.appendChild(explanationNode(data.explanation)); }
          body.appendChild(content);
          details.setAttribute("data-loaded", "yes");
        })
        .catch(function () { details.setAttribute("data-loaded", "failed"); });  // the fallback link stays
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var tree = document.getElementById("class-tree");
    if (tree) { enhanceTree(tree); }
    document.querySelectorAll("details.why").forEach(enhanceWhy);
  });
})();

// The relationship network of a focal firm, drawn with cytoscape.js from /api/network.
// The table under the picture says the same in text.
(function () {
  "use strict";
  var MARKET_COLOURS = {
    CustomerMarket: "#1f77b4", ReferralMarket: "#ff7f0e", SupplierMarket: "#2ca02c",
    RecruitmentMarket: "#d62728", InfluenceMarket: "#9467bd", InternalMarket: "#8c564b"
  };
  var EDGE_COLOURS = ["#555", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f"];

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("network");
    if (!box || !window.cytoscape) { return; }
    box.hidden = false;
    var text = document.getElementById("network-text");
    if (text) { text.open = false; }  // the picture says it now; the table is one click away
    fetch(box.dataset.src, { headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (data) { draw(box, data); });
  });

  function draw(box, data) {
    var kinds = [];
    data.edges.forEach(function (e) { if (kinds.indexOf(e.kind) < 0) { kinds.push(e.kind); } });
    var elements = data.nodes.map(function (n) {
      return { data: { id: n.id, label: n.label, colour: n.focal ? "#222" : (MARKET_COLOURS[n.market] || "#aaa"),
                       size: n.focal ? 46 : 26 } };
    });
    data.edges.forEach(function (e, i) {
      elements.push({ data: { id: "e" + i, source: e.source, target: e.target, label: e.label,
                              colour: EDGE_COLOURS[kinds.indexOf(e.kind) % EDGE_COLOURS.length] } });
    });
    var cy = window.cytoscape({
      container: box,
      elements: elements,
      style: [
        { selector: "node", style: { "background-color": "data(colour)", label: "data(label)", width: "data(size)",
                                      height: "data(size)", "font-size": 10, "text-valign": "bottom", "text-margin-y": 3 } },
        { selector: "edge", style: { "line-color": "data(colour)", "target-arrow-color": "data(colour)",
                                      "target-arrow-shape": "triangle", "curve-style": "bezier", width: 1.5 } }
      ],
      layout: { name: "cose", animate: false, randomize: false, nodeRepulsion: function () { return 60000; },
                idealEdgeLength: function () { return 60; }, gravity: 0.5, numIter: 1500 }
    });
    cy.on("tap", "node", function (event) {
      window.location.href = "/resource?iri=" + encodeURIComponent(event.target.id());
    });
    box.setAttribute("data-rendered-nodes", String(cy.nodes().length));
    box.setAttribute("data-rendered-edges", String(cy.edges().length));
    window.relmarkNetwork = cy;
    legend(data, kinds);
  }

  function legend(data, kinds) {
    var list = document.getElementById("legend");
    if (!list) { return; }
    var seen = {};
    data.nodes.forEach(function (n) { if (n.market) { seen[n.market] = (n.markets[0] || {}).label || n.market; } });
    Object.keys(seen).forEach(function (market) {
      var li = document.createElement("li"), dot = document.createElement("span");
      dot.style.background = MARKET_COLOURS[market] || "#aaa";
      li.appendChild(dot); li.appendChild(document.createTextNode(seen[market]));
      list.appendChild(li);
    });
    kinds.forEach(function (kind, i) {
      var label = data.edges.filter(function (e) { return e.kind === kind; })[0].label;
      var li = document.createElement("li"), line = document.createElement("span");
      line.style.background = EDGE_COLOURS[i % EDGE_COLOURS.length];
      line.style.borderRadius = "0"; line.style.height = "3px";
      li.appendChild(line); li.appendChild(document.createTextNode(label));
      list.appendChild(li);
    });
  }
})();

/* gradviz's interactive page. It reads the gradviz/1 document embedded in the page (with its
 * "steps": the engine's record) and the SVG laid out by Graphviz; it computes nothing that the
 * document and the paths data (gradviz/paths.py) do not hold.
 *
 * Interface: window.gradviz = {document, step, steps, mode, goto(n), forward(n), select(id),
 * setTheme(name)}; the node of the step shown has the class "active"; each node carries data-id. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var doc = JSON.parse($("gv-document").textContent);
  var steps = doc.steps || [];
  // each step's numbers as the terminal and the pictures print them (PyTorch's printing)
  var printedSteps = $("gv-printed") ? JSON.parse($("gv-printed").textContent) : [];
  steps.forEach(function (s, k) { if (printedSteps[k]) { s.printed = printedSteps[k]; } });
  var graph = doc.graph || {functions: [], tensors: []};
  var fns = new Map(), tensors = new Map(), stepOf = new Map(), accOf = new Map(), producer = new Map();
  graph.functions.forEach(function (f) {
    fns.set(f.id, f);
    if (f.tensor) { producer.set(f.tensor, f.id); }
    if (f.name === "AccumulateGrad" && f.variable != null) { accOf.set(f.variable, f.id); }
  });
  graph.tensors.forEach(function (t) { tensors.set(t.id, t); });
  steps.forEach(function (s, k) { stepOf.set(s.function, k + 1); });
  var root = $("gv");
  var view = $("gv-view");
  var state = {step: 0, fstep: 0, mode: "backward", selected: null, timer: null, pathLeaf: ""};

  // ------------------------------------------------------------------ numbers, as the document has them
  function num(v) {
    if (v === null || v === undefined) { return "None"; }
    if (v === "NaN") { return "nan"; }
    if (v === "Infinity") { return "inf"; }
    if (v === "-Infinity") { return "-inf"; }
    if (typeof v === "boolean") { return v ? "True" : "False"; }
    if (typeof v === "number") {
      if (Object.is(v, -0)) { return "-0."; }
      return Number.isInteger(v) && Math.abs(v) < 1e16 ? v + "." : String(v);
    }
    return String(v);
  }
  function fmt(v) {  // full, untruncated: nested lists row by row
    if (!Array.isArray(v)) { return num(v); }
    var deep = v.length && Array.isArray(v[0]);
    return "[" + v.map(fmt).join(deep ? ",\n " : ", ") + "]";
  }
  // a step's value as printed (st.printed, the main pass), else the document's number
  function pr(st, key, i, v) {
    var p = st.printed && st.printed[key];
    if (p && i !== null) { p = p[i]; }
    return typeof p === "string" ? p : fmt(v);
  }
  function size(v) { return Array.isArray(v) ? v.reduce(function (n, x) { return n + size(x); }, 0) : 1; }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) { Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); }); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function valueEl(v, field) {
    var s = el("span", {"class": "gv-val" + (size(v) > 12 ? " gv-long" : "")}, fmt(v));
    if (field) { s.setAttribute("data-field", field); }
    return s;
  }
  function shapeText(shape) { return "(" + shape.join(", ") + (shape.length === 1 ? ",)" : ")"); }

  // ------------------------------------------------------------------ the expression and its parts
  var expr = doc.expression || "";
  var exprEl = $("gv-expr");
  var inputNames = Object.keys(doc.inputs || {});
  var nameHits = [];  // [start, end, leaf tensor id]: the inputs' names in the text
  (function () {
    var leafIds = {};
    graph.tensors.forEach(function (t) { if (t.is_leaf && t.name) { leafIds[t.name] = t.id; } });
    var re = /[A-Za-z_][A-Za-z0-9_]*/g, m;
    if (expr.length <= 200000) {
      while ((m = re.exec(expr)) !== null) {
        if (leafIds[m[0]] !== undefined && expr[m.index - 1] !== ".") { nameHits.push([m.index, re.lastIndex, leafIds[m[0]]]); }
      }
    }
  })();
  var exprShown, exprParts = [];
  // Chrome, Edge, Safari 17.2+: the parts are painted as highlights over the one text node (no
  // layout); elsewhere they are <mark> elements
  var HIGHLIGHTS = !!(window.CSS && CSS.highlights && window.Highlight);
  exprEl.appendChild(document.createTextNode(expr));
  function showExpr(spans) {  // one [start, end) or a list of them (each use of a leaf's name)
    if (spans && !Array.isArray(spans[0])) { spans = [spans]; }
    spans = (spans || []).slice(0, 500).sort(function (a, b) { return a[0] - b[0]; })
      .filter(function (s, i, all) { return i === 0 || s[0] >= all[i - 1][1]; });
    var key = spans.map(function (s) { return s[0] + ":" + s[1]; }).join(",");
    if (key === exprShown) { return; }
    exprShown = key;
    exprParts = spans.map(function (s) { return expr.slice(s[0], s[1]); });
    var first = null;
    if (HIGHLIGHTS) {
      var text = exprEl.firstChild, ranges = spans.map(function (s) {
        var r = document.createRange(); r.setStart(text, s[0]); r.setEnd(text, s[1]); return r;
      });
      CSS.highlights.set("gv-part", new Highlight(...ranges));
      first = ranges[0] || null;
    } else {
      exprEl.textContent = "";
      var at = 0;
      spans.forEach(function (s) {
        exprEl.appendChild(document.createTextNode(expr.slice(at, s[0])));
        var mk = el("mark", null, expr.slice(s[0], s[1]));
        exprEl.appendChild(mk);
        first = first || mk;
        at = s[1];
      });
      exprEl.appendChild(document.createTextNode(expr.slice(at)));
    }
    if (first && expr.length > 120) {  // a long expression scrolls to the part, once the frame is laid out anyway
      requestAnimationFrame(function () {
        if (exprEl.scrollHeight <= exprEl.clientHeight) { return; }
        var box = exprEl.getBoundingClientRect(), r = first.getBoundingClientRect();
        if (r.top < box.top || r.bottom > box.bottom) { exprEl.scrollTop += r.top - box.top - box.height / 3; }
      });
    }
  }
  function spansOf(t) {  // where a tensor is in the text: its span, or each use of a leaf's name
    if (!t) { return []; }
    if (t.span) { return [t.span]; }
    // (a double-backward graph's tensors hold no text: its leaves are the inputs, by name)
    var id = C === M ? t.id : t.is_leaf && t.name ? (graph.tensors.find(function (x) { return x.is_leaf && x.name === t.name; }) || {}).id : null;
    return nameHits.filter(function (h) { return h[2] === id; }).map(function (h) { return [h[0], h[1]]; });
  }
  function clickedOffset() {
    var sel = window.getSelection();
    if (!sel || !sel.anchorNode || !exprEl.contains(sel.anchorNode)) { return -1; }
    var off = 0, walker = document.createTreeWalker(exprEl, NodeFilter.SHOW_TEXT), n;
    while ((n = walker.nextNode())) {
      if (n === sel.anchorNode) { return off + sel.anchorOffset; }
      off += n.length;
    }
    return -1;
  }
  exprEl.addEventListener("click", function () {
    var p = clickedOffset();
    if (p < 0) { return; }
    var hit = nameHits.find(function (h) { return h[0] <= p && p < h[1]; });
    var best = hit ? tensors.get(hit[2]) : null;
    if (C !== M) {  // a double-backward graph: its leaf of that name, if the text names one
      best = best && Array.from(C.tensors.values()).find(function (t) { return t.is_leaf && t.name === best.name && C.nodeEls.has(t.id); });
      if (best) { selectTensor(best, true); }
      return;
    }
    if (!best) {
      graph.tensors.forEach(function (t) {
        if (t.span && t.span[0] <= p && p < t.span[1] && (!best || t.span[1] - t.span[0] < best.span[1] - best.span[0])) { best = t; }
      });
    }
    if (best) { selectTensor(best, true); }
  });

  // ------------------------------------------------------------------ the graphs (SVG)
  var graphs = Array.prototype.slice.call(view.querySelectorAll(".gv-svg:not([data-expanded])"));
  // the backward graph as drawn (runs collapsed, as in the SVG), and, for a graph small enough, the
  // same graph laid out by Graphviz with every run expanded: a click on a collapsed run swaps it in
  var collapsedDiv = graphs[0], expandedDiv = view.querySelector(".gv-svg[data-expanded]");
  var svg, nodeEls, edges, byHead, byTail, owner, members, lastStep, gradTexts;
  // ids of drawn nodes that are not in the document: a collapsed run (c0), where the drawing
  // stops (f3_0_more), a Python number where it enters (cf0_1)
  var COLLAPSED = /^c\d+$/, CUT = /_more$/, CONSTANT = /^c[ft]\d+_\d+$/;
  function push(map, k, v) { var a = map.get(k); if (!a) { map.set(k, a = []); } a.push(v); }
  function bind(div) {  // what the page knows of a drawing of the backward graph: its nodes and edges
    svg = div.querySelector("svg");
    nodeEls = new Map(); edges = []; byHead = new Map(); byTail = new Map();
    bindEdges(); bindOwners(); bindGradTexts();
  }
  function bindEdges() {
  if (svg) {
    svg.querySelectorAll("g.node[data-id]").forEach(function (g) { nodeEls.set(g.getAttribute("data-id"), g); });
    svg.querySelectorAll("g.edge").forEach(function (g) {
      var e = {el: g, tail: g.getAttribute("data-tail"), head: g.getAttribute("data-head")};
      var t = tensors.get(e.tail);
      // a constant's or a no-grad input's dashed line carries no gradient
      // (and --tensors all's dotted line from a tensor to its grad_fn is no edge of the graph)
      if (CONSTANT.test(e.tail) || (t && !t.requires_grad) || (t && !t.is_leaf && t.grad_fn === e.head)) { return; }
      edges.push(e); push(byHead, e.head, e); push(byTail, e.tail, e);
    });
  }
  }
  // A function not drawn (inside a collapsed run, or past the node budget) is shown by the node
  // that stands for it: the collapsed run's, or the cut edge's "…".
  function bindOwners() {
  owner = new Map(); members = new Map();
  (function () {
    var queue = [];
    graph.functions.forEach(function (f) {
      if (!nodeEls.has(f.id)) { return; }
      var stand = (byHead.get(f.id) || []).map(function (e) { return e.tail; })
        .filter(function (t) { return COLLAPSED.test(t) || CUT.test(t); });
      f.next_functions.forEach(function (n, i) {
        if (n === null || nodeEls.has(n) || owner.has(n)) { return; }
        var cut = f.id + "_" + i + "_more";
        var o = stand.indexOf(cut) >= 0 ? cut : stand.find(function (s) { return COLLAPSED.test(s); });
        if (o) { owner.set(n, o); queue.push(n); }
      });
    });
    for (var q = 0; q < queue.length; q++) {
      var id = queue[q], o = owner.get(id);
      push(members, o, id);
      fns.get(id).next_functions.forEach(function (n) {
        if (n !== null && !nodeEls.has(n) && !owner.has(n)) { owner.set(n, o); queue.push(n); }
      });
    }
  })();
  lastStep = new Map();
  members.forEach(function (ids, o) {
    lastStep.set(o, ids.reduce(function (m, id) { return Math.max(m, stepOf.get(id) || 0); }, 0));
  });
  }
  function nodeOf(id) { return nodeEls.get(id) || nodeEls.get(owner.get(id)) || null; }
  // a leaf's "grad = ..." line in its box, shown as it is at the step shown
  function bindGradTexts() {
  gradTexts = new Map();
  graph.tensors.forEach(function (t) {
    var g = nodeEls.get(t.id);
    if (!g || !t.is_leaf || !t.requires_grad) { return; }
    g.querySelectorAll("text").forEach(function (x) {
      if (x.textContent.indexOf("grad = ") === 0) {
        x.dataset.size = x.getAttribute("font-size") || "11";
        gradTexts.set(t.id, {el: x, text: x.textContent});
      }
    });
  });
  }
  bind(collapsedDiv);

  // "grad = None" may be wider than the box Graphviz sized for the final grad: measured once, for all
  // leaves together (one layout), and drawn smaller where it would not fit
  function fitNone() {
    var list = [];
    gradTexts.forEach(function (gt, tid) {
      var box = nodeEls.get(tid).querySelector("path");
      if (box) { list.push([gt, box]); }
    });
    list.forEach(function (p) { p[0].el.textContent = "grad = None"; });
    var sizes = list.map(function (p) {
      var b = p[1].getBBox(), x = Number(p[0].el.getAttribute("x")), w = p[0].el.getComputedTextLength();
      var anchor = p[0].el.getAttribute("text-anchor");
      var room = anchor === "middle" ? b.width - 8 : b.x + b.width - x - 4;
      return w > room && room > 0 ? room / w : 1;
    });
    list.forEach(function (p, i) {
      p[0].el.textContent = p[0].text;
      if (sizes[i] < 1) { p[0].noneSize = (parseFloat(p[0].el.dataset.size) || 11) * sizes[i]; }
      p[0].shown = undefined;
    });
  }

  // ------------------------------------------------------------------ zoom and pan
  // A CSS transform (translate, then scale) on the SVG's box, never its viewBox: moving the picture
  // is then painting only, and no step or drag lays the graph's text out again.
  var views = new Map();  // svg -> {x, y, k, w, h}
  function place(s) {
    var v = views.get(s);
    if (!v) {
      var b = s.getAttribute("viewBox").split(/[ ,]+/).map(Number);
      v = {x: 0, y: 0, k: 1, w: b[2], h: b[3]};
      s.style.width = b[2] + "px"; s.style.height = b[3] + "px";
      views.set(s, v);
    }
    return v;
  }
  function apply(s) {
    var v = place(s);
    // on the SVG's box, not the SVG: a transform of the SVG element itself lays all its text out again
    s.parentNode.style.transform = "translate(" + v.x.toFixed(1) + "px," + v.y.toFixed(1) + "px) scale(" + v.k.toFixed(4) + ")";
  }
  function currentSvg() { var g = graphs.find(function (x) { return !x.hidden; }); return g && g.querySelector("svg"); }
  function fitScale(v) { return Math.min(view.clientWidth / v.w, view.clientHeight / v.h) * 0.98; }
  function fit(s) {
    s = s && s.tagName ? s : currentSvg(); if (!s) { return; }
    var v = place(s);
    v.k = fitScale(v) || 1;
    v.x = (view.clientWidth - v.w * v.k) / 2; v.y = (view.clientHeight - v.h * v.k) / 2;
    apply(s);
  }
  function zoom(factor, cx, cy) {
    var s = currentSvg(); if (!s) { return; }
    var v = place(s), r = view.getBoundingClientRect();
    var px = cx === undefined ? r.width / 2 : cx - r.left, py = cy === undefined ? r.height / 2 : cy - r.top;
    factor = Math.max(0.02, Math.min(20, v.k * factor)) / v.k;
    v.x = px - (px - v.x) * factor; v.y = py - (py - v.y) * factor; v.k *= factor;
    apply(s);
  }
  function centreOn(s, n, scale) {  // put node n in the middle of the view (at scale, if given)
    var v = place(s), r = view.getBoundingClientRect(), nr = n.getBoundingClientRect();
    var ux = (nr.left + nr.width / 2 - r.left - v.x) / v.k, uy = (nr.top + nr.height / 2 - r.top - v.y) / v.k;
    if (scale) { v.k = scale; }
    v.x = r.width / 2 - ux * v.k; v.y = r.height / 2 - uy * v.k;
    apply(s);
  }
  function follow(n) {  // the node of the step shown is kept in view: centred when it is not
    if (!n || !svg || graphs[0].hidden) { return; }
    var r = view.getBoundingClientRect(), nr = n.getBoundingClientRect();
    if (!r.width || (nr.left >= r.left && nr.right <= r.right && nr.top >= r.top && nr.bottom <= r.bottom)) { return; }
    centreOn(svg, n);
  }
  // A large graph opens at a readable size around the output (where backward starts), not fitted
  // small: "fit" shows all of it.
  var READABLE = 0.8;
  function readable(s, centreId) {
    var v = place(s), n = centreId && nodeEls.get(centreId);
    if (fitScale(v) >= READABLE || !n) { return; }
    centreOn(s, n, READABLE);
    var r = view.getBoundingClientRect(), right = v.x + v.w * v.k;  // no empty band right of the graph
    if (right < r.width) { v.x += r.width - right; apply(s); }
  }
  view.addEventListener("wheel", function (ev) { ev.preventDefault(); zoom(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX, ev.clientY); },
    {passive: false});
  var drag = null;
  view.addEventListener("pointerdown", function (ev) {
    var s = currentSvg(); if (!s || ev.button !== 0) { return; }
    var v = place(s);
    drag = {x: ev.clientX, y: ev.clientY, x0: v.x, y0: v.y, moved: false};
  });
  window.addEventListener("pointermove", function (ev) {
    if (!drag) { return; }
    var s = currentSvg(), v = place(s);
    var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) { return; }
    drag.moved = true; view.classList.add("gv-dragging");
    v.x = drag.x0 + dx; v.y = drag.y0 + dy;
    apply(s);
  });
  window.addEventListener("pointerup", function () {
    if (drag && drag.moved) { view.addEventListener("click", swallow, true); }
    drag = null; view.classList.remove("gv-dragging");
  });
  function swallow(ev) { ev.stopPropagation(); view.removeEventListener("click", swallow, true); }
  $("gv-zoom-in").onclick = function () { zoom(1.25); };
  $("gv-zoom-out").onclick = function () { zoom(1 / 1.25); };
  $("gv-fit").onclick = function () { fit(); };

  // ------------------------------------------------------------------ inspecting a node
  // Each drawn graph has a context: what its nodes' ids mean. The backward graph's is the
  // document's; each double-backward graph's (--order 2) is the "gv-double" data: its functions
  // and tensors, and the steps of the backward pass run from that gradient. C: the graph shown.
  var M = {name: "", fns: fns, tensors: tensors, stepOf: stepOf, steps: steps, accOf: accOf, nodeEls: nodeEls,
           members: members, nodeOf: nodeOf, grads: {}};
  var C = M, contexts = {"": M};
  (function doubles() {
    var d = $("gv-double");
    if (!d) { return; }
    d = JSON.parse(d.textContent);
    var dfns = new Map(), dtensors = new Map(), daccOf = new Map(), grads = {};
    d.functions.forEach(function (f) {
      dfns.set(f.id, f);
      if (f.name === "AccumulateGrad" && f.variable != null) { daccOf.set(f.variable, f.id); }
    });
    d.tensors.forEach(function (t) { dtensors.set(t.id, t); });
    Object.keys(d.grads).forEach(function (n) { if (d.grads[n]) { grads[d.grads[n]] = n; } });
    graphs.slice(1).forEach(function (g) {
      var name = g.getAttribute("data-graph"), els = new Map(), dsteps = (d.steps || {})[name] || [], dstepOf = new Map();
      g.querySelectorAll("g.node[data-id]").forEach(function (n) { els.set(n.getAttribute("data-id"), n); });
      dsteps.forEach(function (st, k) { dstepOf.set(st.function, k + 1); });
      contexts[name] = {name: name, fns: dfns, tensors: dtensors, stepOf: dstepOf, steps: dsteps, accOf: daccOf,
                        nodeEls: els, members: new Map(), nodeOf: function (id) { return els.get(id) || null; }, grads: grads};
    });
  })();
  var inspect = $("gv-inspect");
  function row(table, key, value) {
    var tr = el("tr"), td = el("td");
    tr.appendChild(el("th", null, key));
    if (value instanceof Node) { td.appendChild(value); } else { td.textContent = value; }
    tr.appendChild(td); table.appendChild(tr);
  }
  function link(text, id) {
    var a = el("span", {"class": "gv-link", "data-goto": id}, text);
    a.onclick = function () { select(id); };
    return a;
  }
  function tensorText(t) {
    if (t.name) { return t.name; }
    if (C.grads[t.id]) { return "\u2202f/\u2202" + C.grads[t.id]; }
    return t.span ? expr.slice(t.span[0], t.span[1]).trim() : t.id;
  }
  function passName() { return C === M ? "this backward pass" : "the backward pass from \u2202f/\u2202" + C.name; }
  function tensorCard(t, box) {
    var table = el("table");
    row(table, "tensor", tensorText(t));
    row(table, "data", valueEl(t.data, "data"));
    var g = t.grad;
    if (g === null && !t.is_leaf && C === M) {
      row(table, "grad", el("span", {"data-field": "grad"}, "None (an intermediate: PyTorch keeps .grad only on leaves; --retain-grad keeps it)"));
    } else { row(table, "grad", valueEl(g, "grad")); }
    row(table, "shape", shapeText(t.shape));
    row(table, "dtype", "torch." + doc.dtype);
    row(table, "requires_grad", num(t.requires_grad));
    row(table, "is_leaf", num(t.is_leaf));
    row(table, "grad_fn", t.grad_fn ? link(C.fns.get(t.grad_fn).name, t.grad_fn) : "None");
    if (t.is_leaf && C.accOf.has(t.name)) { row(table, "grad goes to", link("AccumulateGrad", C.accOf.get(t.name))); }
    if (C !== M) {  // what reached it in the backward pass run from this gradient
      var fid = t.is_leaf ? C.accOf.get(t.name) : t.grad_fn, k = fid ? C.stepOf.get(fid) : undefined;
      row(table, "grad arriving", k ? valueEl(C.steps[k - 1].grad_in, "pass-grad") :
        el("span", {"data-field": "pass-grad"}, "none reached it"));
      if (t.is_leaf && k && doc.hessian && doc.hessian[C.name] && t.name in doc.hessian[C.name]) {
        row(table, "", "in " + passName() + ": \u2202\u00B2f/\u2202" + C.name + "\u2202" + t.name + ", the Hessian's entry");
      } else { row(table, "", "in " + passName()); }
    }
    box.appendChild(table);
  }
  function functionCard(f, box) {
    var table = el("table");
    row(table, "backward function", f.name);
    var s = C.stepOf.get(f.id), n = C.steps.length;
    row(table, "runs at", !s ? "not run" : C === M ? link("step " + s + " of " + n, "step:" + s) :
      "step " + s + " of " + n + " of " + passName());
    if (f.variable != null) { row(table, "variable", f.variable); }
    if (f.saved) {
      Object.keys(f.saved).forEach(function (k) { row(table, "_saved_" + k, valueEl(f.saved[k], "saved")); });
    }
    if (f.next_functions.length) {
      var list = el("span");
      f.next_functions.forEach(function (n, i) {
        if (i) { list.appendChild(document.createTextNode(", ")); }
        list.appendChild(n === null ? document.createTextNode("None") : link(C.fns.get(n).name, n));
      });
      row(table, "next_functions", list);
    }
    box.appendChild(table);
    var st = s ? C.steps[s - 1] : null;
    if (st && st.rules) {
      box.appendChild(el("h4", null, "gradient rule, with the numbers of " + passName()));
      st.rules.forEach(function (r, i) { box.appendChild(ruleEl(r, st, i)); });
    }
    if (st && st.variable != null) {
      box.appendChild(el("h4", null, "added into " + st.variable + ".grad in " + passName()));
      box.appendChild(el("div", {"class": "gv-val", "data-field": "accumulate"}, st.received.map(function (r, i) { return pr(st, "received", i, r.grad); }).join(" + ") +
        " = " + pr(st, "grad_in", null, st.grad_in)));
    }
  }
  function ruleEl(r, st, i) {
    var p = st && st.printed && st.printed.rules ? st.printed.rules[i] : null;
    var numbers = p ? p.shown : r.numbers;
    var text = "grad_" + r.input + " = " + r.formula + (numbers ? " = " + numbers : "") + " = ";
    var d = el("div", {"class": "gv-rule gv-val"}, text);
    d.appendChild(document.createTextNode(p ? p.grad : fmt(r.grad)));
    return d;
  }
  function collapsedCard(id, box) {
    var ids = C.members.get(id) || [];
    box.appendChild(el("h3", null, id[0] === "c" ? "collapsed run" : "not drawn"));
    box.appendChild(el("p", {"class": "gv-hint", "data-field": "expand-hint"}, ids.length + " backward functions are drawn as this one node" +
      (id[0] !== "c" ? ":" : expandedDiv ? " (click it to expand the runs in the graph):" :
        " (too many functions in all to lay them out expanded on the page: -o x.svg --max-nodes " + graph.functions.length + " draws them):")));
    var ol = el("ol", {"class": "gv-list"});
    ids.slice(0, 2000).forEach(function (fid) {
      var f = C.fns.get(fid), li = el("li");
      li.appendChild(link(f.name, fid));
      var t = C.tensors.get(f.tensor);
      if (t) { li.appendChild(document.createTextNode(" " + tensorText(t).slice(0, 60) + " = " + num(Array.isArray(t.data) ? "…" : t.data))); }
      ol.appendChild(li);
    });
    box.appendChild(ol);
  }
  function clearClass(name) {
    root.querySelectorAll("." + name).forEach(function (e) { e.classList.remove(name); });
  }
  function highlightNodes(ids, cls) {
    clearClass(cls);
    ids.forEach(function (id) { var n = C.nodeOf(id); if (n) { n.classList.add(cls); } });
  }
  function select(id) {
    if (typeof id === "string" && id.indexOf("step:") === 0) { goto(Number(id.slice(5))); return; }
    state.selected = id;
    inspect.textContent = "";
    var f = C.fns.get(id), t = C.tensors.get(id);
    if (!f && !t && (C.members.has(id) || C.nodeEls.has(id))) {
      highlightNodes([id], "gv-selected"); collapsedCard(id, inspect); return;
    }
    if (f && !t) { t = C.tensors.get(f.tensor); }
    if (!f && t) { f = C.fns.get(t.grad_fn) || null; }
    if (C !== M) { inspect.appendChild(el("div", {"class": "gv-hint"}, "double-backward graph of \u2202f/\u2202" + C.name)); }
    inspect.appendChild(el("h3", null, f && (f.id === id || !t) ? f.name : t ? tensorText(t) : id));
    if (t) { tensorCard(t, inspect); }
    if (f) { inspect.appendChild(el("h4", null, f.name === "AccumulateGrad" ? "its AccumulateGrad" : "its grad_fn")); functionCard(f, inspect); }
    showExpr(spansOf(t));
    highlightNodes([id], "gv-selected");
    var owned = C.nodeOf(id);
    if (owned && owned !== C.nodeEls.get(id) && !C.nodeEls.has(id)) {
      inspect.appendChild(el("p", {"class": "gv-hint"}, "(drawn inside the node " + owned.getAttribute("data-id") + ")"));
    }
  }
  function selectTensor(t, fromText) {
    var ids = [t.id];
    if (t.grad_fn) { ids.push(t.grad_fn); }
    if (t.is_leaf && C.accOf.has(t.name)) { ids.push(C.accOf.get(t.name)); }
    select(t.grad_fn && !C.nodeEls.has(t.id) ? t.grad_fn : t.id);
    if (fromText) { highlightNodes(ids, "gv-hit"); }
  }
  view.querySelectorAll(".gv-svg").forEach(function (g) {
    var s = g.querySelector("svg");
    if (!s) { return; }
    s.addEventListener("click", function (ev) {
      var n = ev.target.closest("g.node");
      if (n) { nodeClicked(n.getAttribute("data-id")); }
    });
    s.addEventListener("mouseover", function (ev) {
      var n = ev.target.closest("g.node");
      if (n && n.getAttribute("data-id") !== state.hovered) { state.hovered = n.getAttribute("data-id"); select(state.hovered); }
    });
  });
  function nodeClicked(id) {
    if (C === M && COLLAPSED.test(id) && expandedDiv && !state.expanded) { expand(true, id); return; }
    select(id);
  }
  // Expanding swaps in the drawing with every run expanded (laid out by Graphviz when the page was
  // written); collapsing swaps the drawing as the SVG draws it back. The step shown stays shown.
  function expand(on, around) {
    if (!expandedDiv || !!state.expanded === on) { return; }
    var first = around ? (members.get(around) || [])[0] : null;
    var fromDiv = on ? collapsedDiv : expandedDiv, toDiv = on ? expandedDiv : collapsedDiv;
    var keep = views.get(svg);
    fromDiv.hidden = true; toDiv.hidden = false;
    graphs[0] = toDiv;
    state.expanded = on;
    bind(toDiv);
    M.nodeEls = nodeEls; M.members = members;
    $("gv-collapse").hidden = !on;
    apply(svg);  // (its transform as the page knows it, before anything is measured in it)
    fitNone(); render();  // (the step shown is followed into view)
    if (on) {  // the step shown, else the run's first function, in the middle, at the reader's scale
      var n = svg.querySelector("g.node.active") || (first ? nodeEls.get(first) : null);
      if (n) { centreOn(svg, n, keep ? keep.k : READABLE); } else { fit(svg); }
    }
    if (state.pathLeaf) { showPaths(state.pathLeaf); }
    if (on && first) { select(first); }
  }
  $("gv-collapse").onclick = function () { expand(false); };

  // ------------------------------------------------------------------ stepping the backward pass
  var stepBox = $("gv-step");
  function setClass(e, cls, on) { if (e.classList.contains(cls) !== on) { e.classList.toggle(cls, on); } }
  function showBackward(k) {
    var cur = k > 0 ? steps[k - 1] : null;
    clearClass("active"); clearClass("gv-future");
    edges.forEach(function (e) {
      var s = stepOf.get(e.head);
      if (s === undefined && members.has(e.head)) { s = lastStep.get(e.head); }  // a collapsed run: when its last one ran
      var sent = k > 0 && (s === undefined || s <= k);  // (the starting gradient, into the root, at step 1)
      setClass(e.el, "gv-pending", !sent && steps.length > 0);
      setClass(e.el, "gv-sending", !!cur && e.head === cur.function);
      setClass(e.el, "gv-arriving", !!cur && (e.tail === cur.function || nodeOwnsTail(e, cur)) && e.head !== cur.function);
    });
    gradTexts.forEach(function (gt, tid) {
      var t = tensors.get(tid), acc = accOf.get(t.name), s = acc ? stepOf.get(acc) : undefined;
      var shown = s === undefined || k >= s || steps.length === 0;
      var text = shown ? gt.text : "grad = None";
      if (gt.shown !== text) {
        gt.el.textContent = text; gt.shown = text;
        if (gt.noneSize) { gt.el.setAttribute("font-size", shown ? gt.el.dataset.size || gt.el.getAttribute("font-size") : gt.noneSize.toFixed(2)); }
      }
      setClass(gt.el, "gv-grad-new", !!cur && cur.function === acc);
    });
    if (cur) {
      var n = nodeOf(cur.function);
      if (n) { n.classList.add("active"); follow(n); }
      stepBox.textContent = "";
      stepCard(cur, stepBox);
    } else {
      stepBox.innerHTML = "";
      stepBox.appendChild(el("h3", null, k === 0 ? "Before backward()" : ""));
      stepBox.appendChild(el("p", {"class": "gv-hint"}, steps.length
        ? "Press \u2192 (or \u25B6) to run the engine one backward function at a time, in PyTorch's order."
        : doc.backward_error || "No backward pass: the output needs no grad."));
    }
  }
  function nodeOwnsTail(e, cur) { return owner.get(cur.function) === e.tail; }
  function stepCard(st, box) {
    var f = fns.get(st.function), t = tensors.get(f.tensor);
    box.appendChild(el("h3", null, "Step " + st.step + ": " + st.name));
    if (t) { box.appendChild(el("div", {"class": "gv-hint"}, st.variable != null ? "the leaf " + st.variable : "from " + tensorText(t).slice(0, 200))); }
    box.appendChild(el("h4", null, "gradient arriving"));
    var got = st.received.map(function (r, i) { return pr(st, "received", i, r.grad); });
    var parts = st.received.map(function (r, i) {
      return got[i] + (r.from === null ? " (the starting gradient)" : " from " + fns.get(r.from).name);
    });
    box.appendChild(el("div", {"class": "gv-val"}, parts.join("\n") +
      (st.received.length > 1 ? "\nsum: " + got.join(" + ") + " = " + pr(st, "grad_in", null, st.grad_in) : "")));
    if (st.variable != null) {
      box.appendChild(el("h4", null, "added into " + st.variable + ".grad"));
      var sum = got.join(" + ");
      var text = st.variable + ".grad = " + (st.grad_before === null ? "" : pr(st, "grad_before", null, st.grad_before) + " + ") + sum +
        (st.received.length > 1 || st.grad_before !== null ? " = " + pr(st, "grad_after", null, st.grad_after) : "");
      box.appendChild(el("div", {"class": "gv-acc gv-val", "data-field": "accumulate"}, text));
    } else {
      box.appendChild(el("h4", null, "rule, with the numbers"));
      (st.rules || []).forEach(function (r, i) { box.appendChild(ruleEl(r, st, i)); });
      box.appendChild(el("h4", null, "sent along next_functions"));
      var ul = el("ul", {"class": "gv-list"});
      st.next_functions.forEach(function (n, i) {
        var li = el("li", {"class": "gv-val"});
        li.appendChild(document.createTextNode(pr(st, "grads_out", i, st.grads_out[i]) + " \u2192 "));
        li.appendChild(n === null ? document.createTextNode("None (needs no grad)") : link(fns.get(n).name, n));
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    showExpr(t ? spansOf(t) : null);
  }
  function showForward(k) {
    var order = graph.tensors, cur = k > 0 ? order[k - 1] : null;
    var created = new Set(order.slice(0, k).map(function (t) { return t.id; }));
    nodeEls.forEach(function (g, id) {
      g.classList.remove("active");
      var t = tensors.get(id) || (fns.get(id) ? tensors.get(fns.get(id).tensor) : null);
      setClass(g, "gv-future", !!t && !created.has(t.id));
    });
    edges.forEach(function (e) { e.el.classList.remove("gv-sending", "gv-arriving"); e.el.classList.add("gv-pending"); });
    stepBox.textContent = "";
    if (!cur) {
      stepBox.appendChild(el("h3", null, "Forward pass"));
      stepBox.appendChild(el("p", {"class": "gv-hint"}, "Tensors appear in the order they are created (" + order.length + ")."));
      showExpr(null); return;
    }
    var n = nodeEls.get(cur.id) || (cur.grad_fn ? nodeOf(cur.grad_fn) : null);
    if (n) { n.classList.add("active"); follow(n); }
    stepBox.appendChild(el("h3", null, "Tensor " + k + " of " + order.length + ": " + tensorText(cur).slice(0, 120)));
    tensorCard(cur, stepBox);
    showExpr(spansOf(cur));
  }
  function total() { return state.mode === "forward" ? graph.tensors.length : steps.length; }
  function render() {
    var k = state.mode === "forward" ? state.fstep : state.step;
    if (state.mode === "forward") { showForward(k); } else { showBackward(k); }
    $("gv-counter").textContent = (state.mode === "forward" ? "tensor " : "step ") + k + " / " + total();
    $("gv-jump").value = k; $("gv-jump").max = total();
    api.step = state.step; api.mode = state.mode; api.expanded = !!state.expanded;
  }
  function clamp(n) { n = Math.floor(Number(n) || 0); return Math.max(0, Math.min(total(), n)); }
  function goto(n) {
    if (state.mode !== "backward") { state.mode = "backward"; $("gv-mode").value = "backward"; }
    state.step = Math.max(0, Math.min(steps.length, Math.floor(Number(n) || 0)));
    render();
    return state.step;
  }
  function forward(n) {
    if (state.mode !== "forward") { state.mode = "forward"; $("gv-mode").value = "forward"; }
    state.fstep = Math.max(0, Math.min(graph.tensors.length, Math.floor(Number(n) || 0)));
    render();
    return state.fstep;
  }
  function move(n) { if (state.mode === "forward") { forward(n); } else { goto(n); } }
  function at() { return state.mode === "forward" ? state.fstep : state.step; }
  function play(on) {
    if (state.timer) { clearInterval(state.timer); state.timer = null; }
    if (on) {
      if (at() >= total()) { move(0); }
      state.timer = setInterval(function () {
        if (at() >= total()) { play(false); return; }
        move(at() + 1);
      }, 1000 / Number($("gv-speed").value));
    }
    $("gv-play").textContent = state.timer ? "\u25A0 pause" : "\u25B6 play";
  }
  $("gv-first").onclick = function () { play(false); move(0); };
  $("gv-prev").onclick = function () { play(false); move(at() - 1); };
  $("gv-next").onclick = function () { play(false); move(at() + 1); };
  $("gv-last").onclick = function () { play(false); move(total()); };
  $("gv-play").onclick = function () { play(!state.timer); };
  $("gv-speed").onchange = function () { if (state.timer) { play(true); } };
  $("gv-jump").onchange = function () { play(false); move(clamp(this.value)); };
  $("gv-mode").onchange = function () { play(false); state.mode = this.value; render(); };
  document.addEventListener("keydown", function (ev) {
    if (ev.target && (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT")) { return; }
    var k = ev.key;
    if (k === "ArrowRight") { play(false); move(at() + 1); }
    else if (k === "ArrowLeft") { play(false); move(at() - 1); }
    else if (k === "Home") { play(false); move(0); }
    else if (k === "End") { play(false); move(total()); }
    else if (k === " ") { play(!state.timer); }
    else if (k === "+" || k === "=") { zoom(1.25); }
    else if (k === "-") { zoom(1 / 1.25); }
    else if (k === "0") { fit(); }
    else { return; }
    ev.preventDefault();
  });

  // ------------------------------------------------------------------ paths: the chain rule
  var pathBox = $("gv-pathinfo");
  // computed by gradviz when the page was written (gradviz/paths.py): each path's hops with their
  // local gradients, what flows along the path alone, and their sum
  var pathData = JSON.parse($("gv-path-data").textContent);
  function showPaths(leaf) {
    state.pathLeaf = leaf;
    clearClass("gv-on-path");
    pathBox.textContent = "";
    pathBox.hidden = !leaf;
    if (!leaf) { return; }
    var p = pathData.leaves[leaf];
    if (!p) { pathBox.appendChild(el("p", {"class": "gv-hint"}, "No gradient reaches " + leaf + ".")); return; }
    var on = new Set(p.on);
    on.forEach(function (id) { var n = nodeOf(id); if (n) { n.classList.add("gv-on-path"); } });
    edges.forEach(function (e) {
      var h = fns.has(e.head) ? e.head : null, tl = fns.has(e.tail) ? e.tail : null;
      var onEdge = h && on.has(h) && ((tl && on.has(tl)) || (!tl && (members.get(e.tail) || []).some(function (m) { return on.has(m); })));
      if (!h && e.tail === graph.root) { onEdge = on.size > 0; }
      if (!h && tensors.has(e.head) === false && (members.get(e.head) || []).some(function (m) { return on.has(m); })) { onEdge = true; }
      setClass(e.el, "gv-on-path", !!onEdge);
    });
    var count = p.count, plural = count === 1 ? "" : "s";
    pathBox.appendChild(el("h3", null, count + " path" + plural + " from the output to " + leaf));
    if (!p.computed) {
      pathBox.appendChild(el("p", {"class": "gv-hint", "data-field": "path-bound"}, "Not listed on this page: the paths of the leaves " +
        "before it used up the page's bound (" + pathData.max_work + " edges visited or gradients carried). Their count is exact."));
      return;
    }
    var start = p.start, scalarStart = typeof start === "number";
    pathBox.appendChild(el("p", {"class": "gv-hint"}, "Each path's product of local gradients \u2202(node)/\u2202(input); what reaches " +
      leaf + " along a path alone is the starting gradient carried along it" + (scalarStart && start !== 1 ? " (\u00D7 " + num(start) + ")" : "") +
      "; the chain rule adds the paths: " + leaf + ".grad = \u03A3 paths."));
    var ol = el("ol", {"class": "gv-list", "data-field": "paths"});
    p.paths.forEach(function (path) {
      var li = el("li", {"class": "gv-val"});
      var hops = path.hops.length > 40 ? path.hops.slice(0, 20).concat([null], path.hops.slice(-20)) : path.hops;
      li.textContent = hops.map(function (h) {
        return h === null ? "\u2026 " + (path.hops.length - 40) + " more \u2026" : fns.get(h[0]).name + " \u2192(" + (h[2] === null ? "J" : num(h[2])) + ")";
      }).join(" ") + " " + leaf + ": " +
        (path.product === null ? "" : (path.hops.length <= 40 ? path.hops.map(function (h) { return num(h[2]); }).join(" \u00D7 ") + " = " : "product ") + num(path.product) +
          (scalarStart && start !== 1 ? " \u00D7 " + num(start) : "") + ", ") +
        "contributes " + fmt(path.contribution);
      ol.appendChild(li);
    });
    pathBox.appendChild(ol);
    if (p.paths.some(function (x) { return x.product === null; })) {
      pathBox.appendChild(el("p", {"class": "gv-hint"}, "J: an edge that carries a tensor has a Jacobian, not a number; the contribution is the gradient carried through each function's rule along the path (a vector-Jacobian product)."));
    }
    if (p.reason) { pathBox.appendChild(el("p", {"class": "gv-hint"}, p.reason)); }
    if (!p.complete) {
      pathBox.appendChild(el("p", {"class": "gv-hint", "data-field": "path-bound"}, "(the first " + p.paths.length + " of " + count + " paths: the page lists at most " +
        pathData.max_paths + " per leaf and " + pathData.max_work + " edges in all)"));
    }
    if (p.sum !== null) {
      var parts = p.paths.map(function (x) { return fmt(x.contribution); });
      pathBox.appendChild(el("div", {"class": "gv-acc gv-val", "data-field": "path-sum"}, (p.complete ? "sum: " : "sum of these: ") +
        (parts.length > 1 && parts.length <= 12 ? parts.join(" + ") + " = " : "") + fmt(p.sum) + "   (" + leaf + ".grad = " + fmt(p.grad) + ")"));
    }
  }
  var pathSel = $("gv-paths");
  inputNames.forEach(function (n) {
    if (accOf.has(n)) { pathSel.appendChild(el("option", {value: n}, n)); }
  });
  pathSel.onchange = function () { showPaths(this.value); };

  // ------------------------------------------------------------------ the other graphs (--order 2), extras
  var pick = $("gv-graph");
  if (graphs.length > 1) {
    $("gv-graph-pick").hidden = false;
    graphs.forEach(function (g) {
      var name = g.getAttribute("data-graph");
      pick.appendChild(el("option", {value: name}, name ? "\u2202f/\u2202" + name + " (double backward)" : "backward graph"));
    });
    pick.onchange = function () {
      var v = this.value;
      graphs.forEach(function (g) { g.hidden = g.getAttribute("data-graph") !== v; });
      C = contexts[v] || M;
      state.hovered = null;
      inspect.textContent = "";
      inspect.appendChild(el("p", {"class": "gv-hint"}, "Hover or click a node to inspect it."));
      fit();
    };
  }
  graphs.forEach(function (g, i) { g.hidden = i !== 0; });
  var extra = $("gv-extra");
  if (doc.hessian) {
    var names = Object.keys(doc.hessian);
    var h = el("div");
    h.appendChild(el("h3", null, "Hessian (--order 2): \u2202\u00B2f / \u2202a \u2202b"));
    var table = el("table", {id: "gv-hessian"}), tr = el("tr");
    tr.appendChild(el("th", null, ""));
    names.forEach(function (b) { tr.appendChild(el("th", null, b)); });
    table.appendChild(tr);
    names.forEach(function (a) {
      var r = el("tr");
      r.appendChild(el("th", null, a));
      names.forEach(function (b) { var td = el("td"); td.appendChild(valueEl(doc.hessian[a][b])); r.appendChild(td); });
      table.appendChild(r);
    });
    h.appendChild(table);
    extra.appendChild(h);
  }
  (function tensorsTable() {
    var retained = graph.tensors.some(function (t) { return !t.is_leaf && t.grad !== null; });
    var d = el("details");
    d.appendChild(el("summary", null, "Tensors (" + graph.tensors.length + ")" + (retained ? ": intermediates' grads retained (--retain-grad)" : "")));
    if (retained) { d.open = true; }
    var filled = false;
    function fill() {
      if (filled) { return; } filled = true;
      var table = el("table", {id: "gv-tensors"}), head = el("tr");
      ["tensor", "data", "grad", "shape", "requires_grad", "is_leaf", "grad_fn"].forEach(function (c) { head.appendChild(el("th", null, c)); });
      table.appendChild(head);
      graph.tensors.slice(0, 5000).forEach(function (t) {
        var r = el("tr"), c = el("td");
        c.appendChild(link(tensorText(t).slice(0, 60), t.id)); r.appendChild(c);
        [fmt(t.data), fmt(t.grad), shapeText(t.shape), num(t.requires_grad), num(t.is_leaf), t.grad_fn ? fns.get(t.grad_fn).name : "None"]
          .forEach(function (v) { r.appendChild(el("td", {"class": "gv-val"}, v.length > 200 ? v.slice(0, 200) + "…" : v)); });
        table.appendChild(r);
      });
      d.appendChild(table);
    }
    d.addEventListener("toggle", fill);
    if (d.open) { fill(); }
    extra.appendChild(d);
  })();

  // ------------------------------------------------------------------ summary, theme
  (function summary() {
    var out = doc.output || {}, s = "f = " + (Array.isArray(out.data) ? "tensor of shape " + shapeText(out.shape) : num(out.data));
    var shownInputs = 0;
    inputNames.forEach(function (n) {
      var g = doc.inputs[n].grad;
      if (g !== null && ++shownInputs === 7) { s += "   \u2026 (" + inputNames.length + " inputs: the Tensors table has every grad)"; }
      if (g !== null && shownInputs < 7) { s += "   \u2202f/\u2202" + n + (Array.isArray(g) ? ": shape " + shapeText(doc.inputs[n].shape) : " = " + num(g)); }
    });
    $("gv-summary").textContent = s + "   (" + doc.dtype + ", " + steps.length + " backward steps)";
  })();
  var themes = ["auto", "light", "dark"], theme = "auto";
  function systemDark() { return !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches); }
  function setTheme(name) {
    theme = themes.indexOf(name) >= 0 ? name : "auto";
    var dark = theme === "dark" || (theme === "auto" && systemDark());
    root.setAttribute("data-theme", dark ? "dark" : "light");
    document.documentElement.style.setProperty("--page-bg", dark ? "#0b1120" : "#ffffff");
    $("gv-theme").textContent = "theme: " + theme;
  }
  $("gv-theme").onclick = function () { setTheme(themes[(themes.indexOf(theme) + 1) % themes.length]); };
  if (window.matchMedia) {
    var mq = window.matchMedia("(prefers-color-scheme: dark)");
    if (mq.addEventListener) { mq.addEventListener("change", function () { if (theme === "auto") { setTheme("auto"); } }); }
  }

  var api = {document: doc, step: 0, steps: steps.length, mode: "backward", goto: goto, forward: forward,
             select: select, setTheme: setTheme, paths: showPaths, expand: expand, expanded: false,
             highlighted: function () { return exprParts.slice(); }};
  window.gradviz = api;
  setTheme("auto");
  render();
  // the graph and the panel fill the window below the header (measured once, and on resize)
  function placeMain() { root.style.setProperty("--gv-top", view.parentNode.offsetTop + "px"); }
  placeMain();
  window.addEventListener("resize", placeMain);
  graphs.forEach(function (g) { var s = g.querySelector("svg"); if (s) { fit(s); } });
  if (svg) { readable(svg, graph.root); }
  // measured with the font Graphviz measured (the SVG's own), once it is loaded
  if (gradTexts.size && document.fonts && document.fonts.ready) {
    document.fonts.ready.then(function () { fitNone(); render(); });
  }
})();

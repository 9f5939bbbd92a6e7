// Framework switcher: consecutive cells tagged `pytorch` / `tensorflow` become one tabbed block.
// The reader's choice applies to every block on the page and is remembered (localStorage)
// across pages and reloads. Without JavaScript both versions simply show one after the other.
// A group with one framework only gets no tab bar: its cells show whatever the choice, under
// a small label naming the framework.
(function () {
  "use strict";
  var KEY = "fusion-book-framework";
  var LABELS = { pytorch: "PyTorch", tensorflow: "TensorFlow" };

  function frameworkOf(el) {
    if (!el || !el.classList) return null;
    if (el.classList.contains("tag_pytorch")) return "pytorch";
    if (el.classList.contains("tag_tensorflow")) return "tensorflow";
    return null;
  }

  function chosen() {
    try { return localStorage.getItem(KEY) || "pytorch"; } catch (e) { return "pytorch"; }
  }

  function apply(choice) {
    document.querySelectorAll(".framework-tabs").forEach(function (block) {
      var cells = block.querySelectorAll(":scope > .cell");
      var has = Array.prototype.some.call(cells, function (c) { return frameworkOf(c) === choice; });
      var show = has ? choice : frameworkOf(cells[0]);
      cells.forEach(function (c) { c.hidden = frameworkOf(c) !== show; });
      block.querySelectorAll(".framework-tab").forEach(function (b) {
        var on = b.dataset.framework === show;
        b.classList.toggle("active", on);
        b.setAttribute("aria-selected", on ? "true" : "false");
      });
    });
  }

  function choose(fw) {
    try { localStorage.setItem(KEY, fw); } catch (e) { /* private mode: page-local choice */ }
    apply(fw);
  }

  function build() {
    var seen = new Set();
    document.querySelectorAll(".cell.tag_pytorch, .cell.tag_tensorflow").forEach(function (first) {
      if (seen.has(first)) return;
      var group = [];
      for (var el = first; frameworkOf(el); el = el.nextElementSibling) { group.push(el); seen.add(el); }
      var present = [];
      group.forEach(function (c) { var f = frameworkOf(c); if (present.indexOf(f) < 0) present.push(f); });
      var block = document.createElement("div");
      if (present.length < 2) {
        block.className = "framework-single";
        block.dataset.framework = present[0];
        var label = document.createElement("div");
        label.className = "framework-label";
        label.textContent = LABELS[present[0]] + " only";
        first.parentNode.insertBefore(block, first);
        block.appendChild(label);
        group.forEach(function (c) { block.appendChild(c); });
        return;
      }
      block.className = "framework-tabs";
      var bar = document.createElement("div");
      bar.className = "framework-tabbar";
      bar.setAttribute("role", "tablist");
      present.forEach(function (fw) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "framework-tab";
        b.dataset.framework = fw;
        b.setAttribute("role", "tab");
        b.textContent = LABELS[fw];
        b.addEventListener("click", function () { choose(fw); });
        bar.appendChild(b);
      });
      first.parentNode.insertBefore(block, first);
      block.appendChild(bar);
      group.forEach(function (c) { block.appendChild(c); });
    });
    apply(chosen());
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build);
  else build();
})();

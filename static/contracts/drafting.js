/* The contract drafting screen (docs/contracts.md#drafting-screen).
 *
 * Every change posts the unsaved rows to the preview URL and puts the server's figures in place:
 * money is computed in Python with Decimal, never here. Also: adds rows from the empty-form
 * template, shows the yearly-billing choice only on yearly lines, and the dates row on demand.
 */
(function () {
  "use strict";
  var form = document.getElementById("draft-form");
  if (!form) return;
  var previewUrl = form.dataset.previewUrl;
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var total = form.querySelector("input[name=lines-TOTAL_FORMS]");
  var timer = null;
  var sequence = 0;

  function rowsOf(prefix) {
    return form.querySelectorAll('[data-prefix="' + prefix + '"]');
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  function syncYearly(prefix) {
    var term = form.querySelector('[name="' + prefix + '-term"]');
    var extra = form.querySelector('tr.line-extra[data-prefix="' + prefix + '"]');
    if (!term || !extra) return;
    var yearly = term.value === "yearly";
    extra.querySelector(".yearly-billing").hidden = !yearly;
    if (yearly) extra.hidden = false;
  }

  function apply(data) {
    data.rows.forEach(function (row) {
      var main = form.querySelector('tr.line-row[data-prefix="' + row.key + '"]');
      var extra = form.querySelector('tr.line-extra[data-prefix="' + row.key + '"]');
      if (!main) return;
      ["effective_unit_price", "monthly_amount", "monthly_margin"].forEach(function (name) {
        var cell = main.querySelector('[data-cell="' + name + '"]');
        if (cell) cell.textContent = row[name];
      });
      var pct = main.querySelector('[data-cell="margin_percent"]');
      if (pct) pct.textContent = row.margin_percent === "—" ? "" : row.margin_percent;
      var upfront = main.querySelector('[data-cell="upfront_yearly_amount"]');
      if (upfront) upfront.textContent = row.upfront_yearly_amount ? "upfront 年付 " + row.upfront_yearly_amount : "";
      var price = main.querySelector('[name="' + row.key + '-list_unit_price"]');
      if (price) price.placeholder = row.price_list_price;
      var termDiscount = main.querySelector('[name="' + row.key + '-term_discount_percent"]');
      if (termDiscount) termDiscount.placeholder = row.term_discount_percent;
      if (extra) {
        extra.querySelector('[data-cell="problem"]').textContent = row.problem;
        extra.querySelector('[data-cell="cost_basis"]').textContent = row.cost_basis;
      }
    });
    var t = data.totals;
    setText("total-monthly", t.monthly_amount);
    setText("summary-monthly", t.monthly_amount);
    setText("total-margin", t.monthly_margin);
    setText("summary-margin", t.monthly_margin);
    setText("total-margin-percent", t.margin_percent);
    setText("summary-margin-percent", t.margin_percent);
    setText("summary-net", t.monthly_net);
    setText("summary-cost", t.monthly_cost);
    var term = document.getElementById("term-value");
    if (term && term.textContent.indexOf("open-ended") === -1) term.textContent = t.term_value;
    setText("approval-text", data.approval.text);
    document.getElementById("approval-preview").classList.toggle("needed", data.approval.needed);
    form.dataset.previewed = String(sequence);
  }

  function preview() {
    var mine = ++sequence;
    fetch(previewUrl, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-CSRFToken": csrf },
      credentials: "same-origin",
    })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data && mine === sequence) apply(data); });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(preview, 250);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", function (event) {
    var name = event.target.name || "";
    var match = name.match(/^(lines-\d+)-(term|DELETE)$/);
    if (match && match[2] === "term") syncYearly(match[1]);
    if (match && match[2] === "DELETE") {
      rowsOf(match[1]).forEach(function (tr) { tr.classList.toggle("deleted", event.target.checked); });
    }
    schedule();
  });

  form.addEventListener("click", function (event) {
    var button = event.target.closest(".toggle-extra");
    if (!button) return;
    var prefix = button.closest("tr").dataset.prefix;
    var extra = form.querySelector('tr.line-extra[data-prefix="' + prefix + '"]');
    extra.hidden = !extra.hidden;
  });

  var add = document.getElementById("add-line");
  if (add) {
    add.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      var html = document.getElementById("empty-line").innerHTML.replace(/__prefix__/g, String(index));
      document.getElementById("line-rows").insertAdjacentHTML("beforeend", html);
      total.value = String(index + 1);
      var first = form.querySelector('[name="lines-' + index + '-resource"]');
      if (first) first.focus();
    });
  }
})();

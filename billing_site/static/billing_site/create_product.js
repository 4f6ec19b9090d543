/*
 * The admin's "Create product" page (templates/admin/catalog/product/create_product.html).
 *
 * The page works without JavaScript (plain POST; "Add another price" and "Add tier" are
 * submit buttons the server handles). This script only makes it pleasant:
 *   - shows the fields of the chosen pricing model, billing period and meter choice, and
 *     disables the hidden ones so that they are not submitted;
 *   - adds and removes prices and tier rows in place, keeping Django's formset names
 *     (prices-TOTAL_FORMS, prices-<n>-<field>, prices-<n>-tiers-<row>-<column>) contiguous.
 * Vanilla JS, no dependencies, works offline.
 */
(function () {
  "use strict";

  var USAGE_BASED = ["per_unit", "package", "graduated", "volume"];
  var TIERED = ["graduated", "volume"];
  var AMOUNT_LABELS = {
    flat_rate: "Price:",
    per_unit: "Price per unit:",
    package: "Price per package:",
  };
  var NEW_METER = "new";

  function field(block, name) {
    return block.querySelector('[name="' + block.dataset.prefix + "-" + name + '"]');
  }

  function hasErrors(element) {
    return element.querySelector(".errorlist li") !== null;
  }

  // Hide a section and disable its inputs, unless it shows an error the user must see.
  function show(element, visible) {
    if (!element) {
      return;
    }
    visible = visible || hasErrors(element);
    element.hidden = !visible;
    element.querySelectorAll("input, select, textarea").forEach(function (input) {
      input.disabled = !visible;
    });
  }

  function update(block) {
    var model = field(block, "pricing_model").value;
    var usageBased = USAGE_BASED.indexOf(model) !== -1;
    var tiered = TIERED.indexOf(model) !== -1;

    show(block.querySelector(".form-row.field-amount"), !tiered);
    show(block.querySelector(".form-row.field-package_size"), model === "package");
    show(block.querySelector(".price-tiers"), tiered);
    var label = block.querySelector(".form-row.field-amount label");
    if (label && AMOUNT_LABELS[model]) {
      label.textContent = AMOUNT_LABELS[model];
    }

    var period = field(block, "billing_period");
    var oneOff = period.querySelector('option[value="one_off"]');
    if (oneOff) {
      oneOff.disabled = usageBased;
      if (usageBased && period.value === "one_off") {
        period.value = "month";
      }
    }
    show(block.querySelector(".form-row.field-interval_count"), period.value === "custom");

    var meterSet = block.querySelector("fieldset.price-meter");
    show(meterSet, usageBased);
    if (usageBased || (meterSet && !meterSet.hidden)) {
      var meter = field(block, "meter");
      var creating = !meter.disabled && meter.value === NEW_METER;
      ["display_name", "event_name", "formula"].forEach(function (name) {
        show(block.querySelector(".form-row.field-new_meter_" + name), creating);
      });
    }
  }

  // --- tiers -------------------------------------------------------------------------------

  function tierRows(block) {
    return Array.prototype.slice.call(block.querySelectorAll(".tier-table tbody tr.tier-row"));
  }

  function renumberTiers(block) {
    var rows = tierRows(block);
    rows.forEach(function (row, index) {
      row.querySelector(".tier-number").textContent = String(index + 1);
      row.querySelectorAll("input").forEach(function (input) {
        input.name = input.name.replace(/-tiers-[^-]+-/, "-tiers-" + index + "-");
        input.id = "id_" + input.name;
      });
      var upTo = row.querySelector('input[name$="-up_to"]');
      upTo.placeholder = index === rows.length - 1 ? "inf" : "";
      row.querySelector(".remove-tier").disabled = rows.length === 1;
    });
  }

  function isOpenEnded(row) {
    var value = row.querySelector('input[name$="-up_to"]').value.trim().toLowerCase();
    return value === "" || value === "inf";
  }

  function addTier(block) {
    var template = document.getElementById("tier-row-template");
    var holder = document.createElement("tbody");
    holder.innerHTML = template.innerHTML
      .replace(/^[\s\S]*?<tbody>/, "")
      .replace(/<\/tbody>[\s\S]*$/, "")
      .replace(/__prefix__/g, block.dataset.index);
    var row = holder.querySelector("tr");
    var body = block.querySelector(".tier-table tbody");
    var rows = tierRows(block);
    var last = rows[rows.length - 1];
    // New tiers go before the open-ended last tier, as in the Stripe Dashboard.
    if (last && isOpenEnded(last)) {
      body.insertBefore(row, last);
    } else {
      body.appendChild(row);
    }
    renumberTiers(block);
    row.querySelector("input").focus();
  }

  function removeTier(block, row) {
    if (tierRows(block).length > 1) {
      row.remove();
      renumberTiers(block);
    }
  }

  // --- prices ------------------------------------------------------------------------------

  function priceBlocks() {
    return Array.prototype.slice.call(document.querySelectorAll("#price-forms > .price-form"));
  }

  function totalForms() {
    return document.getElementById("id_prices-TOTAL_FORMS");
  }

  var RENAMED = ["name", "id", "for", "aria-labelledby", "aria-describedby"];

  function renumberPrices() {
    var blocks = priceBlocks();
    blocks.forEach(function (block, index) {
      var prefix = "prices-" + index + "-";
      block.dataset.index = String(index);
      block.dataset.prefix = "prices-" + index;
      block.querySelector(".price-number").textContent = String(index + 1);
      block.querySelectorAll("*").forEach(function (element) {
        RENAMED.forEach(function (attribute) {
          var value = element.getAttribute(attribute);
          if (value) {
            element.setAttribute(attribute, value.replace(/prices-[^-]+-/g, prefix));
          }
        });
      });
      var addTierButton = block.querySelector(".add-tier");
      if (addTierButton) {
        addTierButton.value = "prices-" + index;
      }
      block.querySelector(".remove-price").hidden = blocks.length === 1;
    });
    totalForms().value = String(blocks.length);
    var addPrice = document.getElementById("add-price");
    var container = document.getElementById("price-forms");
    addPrice.disabled = blocks.length >= parseInt(container.dataset.maxPrices, 10);
  }

  function addPrice() {
    var index = priceBlocks().length;
    var template = document.getElementById("price-template");
    var holder = document.createElement("div");
    holder.innerHTML = template.innerHTML.replace(/__prefix__/g, String(index));
    var block = holder.querySelector(".price-form");
    document.getElementById("price-forms").appendChild(block);
    renumberPrices();
    setUp(block);
    field(block, "pricing_model").focus();
  }

  function setUp(block) {
    update(block);
    renumberTiers(block);
  }

  function blockOf(element) {
    return element.closest(".price-form");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("create-product-form");
    if (!form) {
      return;
    }
    form.classList.add("js-enabled");
    priceBlocks().forEach(setUp);
    renumberPrices();

    form.addEventListener("change", function (event) {
      var block = blockOf(event.target);
      if (block && event.target.tagName === "SELECT") {
        update(block);
      }
    });

    form.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button) {
        return;
      }
      var block = blockOf(button);
      if (button.id === "add-price") {
        event.preventDefault();
        addPrice();
      } else if (button.classList.contains("add-tier") && block) {
        event.preventDefault();
        addTier(block);
      } else if (button.classList.contains("remove-tier") && block) {
        event.preventDefault();
        removeTier(block, button.closest("tr"));
      } else if (button.classList.contains("remove-price") && block) {
        event.preventDefault();
        if (priceBlocks().length > 1) {
          block.remove();
          renumberPrices();
        }
      }
    });
  });
})();

// The demo shop's cart: kept in localStorage, no server involved.

const KEY = "demo-shop-cart";
const PRICES = "demo-shop-prices"; // product slug -> price in cents, learnt from the buttons

/** @returns {Record<string, number>} product slug -> quantity */
function load() {
  try {
    const cart = JSON.parse(localStorage.getItem(KEY) || "{}");
    return cart && typeof cart === "object" ? cart : {};
  } catch {
    return {};
  }
}

/** @returns {Record<string, number>} */
function prices() {
  try {
    return JSON.parse(localStorage.getItem(PRICES) || "{}") || {};
  } catch {
    return {};
  }
}

/** @param {Record<string, number>} cart */
function save(cart) {
  localStorage.setItem(KEY, JSON.stringify(cart));
  render();
  // The chat's JS API (widget/README.md): agents see the cart as an attribute,
  // and proactive triggers can look at it ("cart.total at least 50").
  const w = /** @type {any} */ (window);
  const price = prices();
  const items = Object.values(cart).reduce((a, b) => a + b, 0);
  const cents = Object.entries(cart).reduce((sum, [slug, qty]) => sum + qty * (price[slug] || 0), 0);
  (w.$chat = w.$chat || []).push(["set", { cart: { items, total: cents / 100, currency: "EUR" } }]);
}

/** Update the header count and, on the checkout page, the cart table. */
function render() {
  const cart = load();
  const count = Object.values(cart).reduce((a, b) => a + b, 0);
  const badge = document.getElementById("cart-count");
  if (badge) badge.textContent = String(count);
  const table = document.getElementById("cart-table");
  if (!table) return;
  let total = 0;
  for (const row of table.querySelectorAll("tbody tr")) {
    const tr = /** @type {HTMLElement} */ (row);
    const qty = cart[tr.dataset.slug || ""] || 0;
    tr.hidden = qty === 0;
    /** @type {HTMLElement} */ (tr.querySelector(".qty")).textContent = String(qty);
    total += qty * Number(tr.dataset.cents);
  }
  const sum = document.getElementById("cart-total");
  if (sum) sum.textContent = `€${(total / 100).toFixed(2)}`;
  table.hidden = count === 0;
  const actions = document.getElementById("cart-actions");
  if (actions) actions.hidden = count === 0;
  const empty = document.getElementById("cart-empty");
  if (empty) empty.hidden = count > 0;
}

document.addEventListener("click", (event) => {
  const target = /** @type {HTMLElement} */ (event.target);
  const add = target.closest("[data-add]");
  if (add instanceof HTMLElement && add.dataset.add) {
    if (add.dataset.cents) {
      localStorage.setItem(PRICES, JSON.stringify({ ...prices(), [add.dataset.add]: Number(add.dataset.cents) }));
    }
    const cart = load();
    cart[add.dataset.add] = (cart[add.dataset.add] || 0) + 1;
    save(cart);
    add.textContent = "Added ✓";
    setTimeout(() => (add.textContent = "Add to cart"), 1200);
  } else if (target.id === "cart-clear") {
    save({});
  } else if (target.id === "cart-order") {
    save({});
    const done = document.getElementById("cart-done");
    if (done) done.hidden = false;
  }
});

// Another tab changed the cart.
window.addEventListener("storage", (event) => event.key === KEY && render());
render();

// The live page: polls GET /live/summary, answers the order search with GET /live/orders/{id}, lists a subscriber's dead
// letters with GET /deadletters. Everything it shows goes into the page as text (textContent, never innerHTML): order
// ids, reasons and errors are data, not markup.
"use strict";

const keyStorage = "orderflow.apiKey";
const pollMs = 2000;
let previous = null;

function apiKey() {
  return sessionStorage.getItem(keyStorage);
}

async function getJson(path) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) {
    headers["X-Api-Key"] = key;
  }

  const response = await fetch(path, { headers });
  if (response.status === 401) {
    document.getElementById("key-form").hidden = false;
    throw new Error(key ? "the API key was refused" : "this silo needs an API key");
  }

  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body && (body.detail || body.title) ? (body.detail || body.title) : `${path} answered ${response.status}`);
  }

  return body;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) {
    node.textContent = String(text);
  }

  if (className) {
    node.className = className;
  }

  return node;
}

function row(cells, className) {
  const tr = element("tr", null, className);
  for (const cell of cells) {
    if (cell instanceof Node) {
      const td = element("td");
      td.append(cell);
      tr.append(td);
    } else {
      tr.append(element("td", cell, typeof cell === "number" ? "number" : undefined));
    }
  }

  return tr;
}

function time(value) {
  return value ? new Date(value).toLocaleTimeString() : "–";
}

function setText(id, value) {
  document.getElementById(id).textContent = String(value);
}

// The summary's line is rewritten by every poll; what a search found stays on its own line until the next search.
function status(message, isError, id = "status") {
  const node = document.getElementById(id);
  node.textContent = message;
  node.className = isError ? "error" : "";
}

async function refreshSummary() {
  try {
    const summary = await getJson("/live/summary");
    const at = Date.parse(summary.at);
    if (previous && at > previous.at) {
      const seconds = (at - previous.at) / 1000;
      setText("orders-rate", Math.max(0, (summary.ordersPlaced - previous.ordersPlaced) / seconds).toFixed(1));
      setText("applied-rate", Math.max(0, (summary.silo.applied - previous.applied) / seconds).toFixed(1));
    }

    previous = { at, ordersPlaced: summary.ordersPlaced, applied: summary.silo.applied };
    setText("orders-total", summary.ordersPlaced);
    setText("duplicates-total", summary.silo.duplicates);
    setText("outbox-orders", summary.outboxOrders);
    setText("unchecked-orders", summary.uncheckedOrders);

    const body = document.querySelector("#subscribers tbody");
    body.replaceChildren(...summary.subscribers.map((s) => {
      let letters = s.deadLetters;
      if (s.deadLetters > 0) {
        letters = element("button", s.deadLetters, "link");
        letters.type = "button";
        letters.addEventListener("click", () => showDeadLetters(s.name));
      }

      return row([s.name, s.ordersBehind, time(s.oldestBehindSince), letters], s.ordersBehind > 0 || s.deadLetters > 0 ? "behind" : undefined);
    }));
    status(`updated ${time(summary.at)}`, false);
  } catch (error) {
    status(error.message, true);
  }
}

async function showDeadLetters(subscriber) {
  try {
    const list = await getJson(`/deadletters?subscriber=${encodeURIComponent(subscriber)}`);
    document.getElementById("dead-letters").hidden = false;
    setText("dead-letters-title", `Dead letters of ${subscriber}`);
    document.querySelector("#dead-letters tbody").replaceChildren(...list.letters.map((letter) =>
      row([letter.orderId, `#${letter.sequence} ${letter.eventKind}`, letter.attempts, time(letter.firstFailureAt), letter.error])));
  } catch (error) {
    status(error.message, true);
  }
}

async function showOrder(orderId) {
  const timeline = document.getElementById("timeline");
  try {
    const order = await getJson(`/live/orders/${encodeURIComponent(orderId)}`);
    setText("timeline-title", `Order ${order.orderId}`);
    setText("timeline-summary", `${order.status}: ${order.lastSequence} events, ${order.publishedSequence} published`
      + (order.relay ? `; the relay holds it since ${time(order.relay.since)} (behind: ${order.relay.behind.join(", ") || "unchecked"})` : ""));
    document.querySelector("#events tbody").replaceChildren(...order.events.map((e) =>
      row([e.sequence, e.kind, time(e.occurredAt), e.detail])));
    document.querySelector("#progress tbody").replaceChildren(...order.subscribers.map((s) =>
      row([
        s.subscriber,
        `${s.appliedSequence} of ${order.lastSequence}`,
        s.stored ? s.delivery : `${s.delivery} (nothing stored yet)`,
        s.held.join(", "),
        s.attempts,
        s.skipped.join(", "),
        s.deadLetter ? `#${s.deadLetter.sequence} ${s.deadLetter.eventKind}: ${s.deadLetter.error}` : "",
      ], s.delivery.toLowerCase())));
    timeline.hidden = false;
    status(`order ${order.orderId} read ${new Date().toLocaleTimeString()}`, false, "order-status");
  } catch (error) {
    timeline.hidden = true;
    status(error.message, true, "order-status");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(keyStorage, document.getElementById("api-key").value);
    document.getElementById("key-form").hidden = true;
    refreshSummary();
  });
  document.getElementById("order-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = document.getElementById("order-id").value.trim();
    if (id) {
      history.replaceState(null, "", `#${encodeURIComponent(id)}`);
      showOrder(id);
    }
  });
  if (location.hash.length > 1) {
    const id = decodeURIComponent(location.hash.slice(1));
    document.getElementById("order-id").value = id;
    showOrder(id);
  }

  refreshSummary();
  setInterval(refreshSummary, pollMs);
});

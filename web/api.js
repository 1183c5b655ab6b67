// The recommender's public API, as the page uses it: GET calls, and POST-then-poll for recommendation requests.
// Every failure becomes an ApiError whose message is meant for a person (never a raw JSON dump).

import { idToken } from "./auth.js";

const BASE = new URL("api/", document.baseURI);
// Long-polling: each GET waits up to WAIT_S seconds on the server and answers as soon as the request is finished.
const WAIT_S = 10;
const WAIT_LIMIT_MS = 60000;
const MIN_ASK_MS = 500;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

// Words for the error codes a person can meet; anything else shows the API's own message.
const EXPLAIN = {
  unknown_user: "The model does not know you yet: it learns your ratings at its next training.",
  unauthorized: "Your session has ended: sign in again.",
  unknown_movie: "That movie is not in the model's catalogue.",
  unknown_genre: "That genre is not in the catalogue.",
  invalid_rating: "A rating is outside the model's scale.",
  retries_exhausted: "The recommender could not finish this request. Please try again.",
  queue_unavailable: "The recommender is busy. Please try again in a moment.",
  model_unavailable: "No model is being served right now.",
  catalogue_unavailable: "The movie catalogue cannot be read right now.",
  throttled: "Too many requests at once. Please wait a moment and try again.",
};

function describe(status, body) {
  const error = body && typeof body === "object" ? body.error : null;
  if (error && EXPLAIN[error.code]) return `${EXPLAIN[error.code]} (${error.message})`;
  if (error && error.message) {
    return status >= 500 ? `The recommender failed: ${error.message}` : `The request was refused: ${error.message}`;
  }
  if (status === 403) return "The recommender refused access to this page.";
  if (status === 429) return EXPLAIN.throttled;
  return `The recommender answered with HTTP status ${status}.`;
}

async function call(method, path, body, personal = false) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (personal) {
    const token = await idToken();
    if (!token) throw new ApiError("Sign in first.", "signed_out", 401);
    headers.Authorization = `Bearer ${token}`;
  }
  let response;
  try {
    response = await fetch(new URL(path, BASE), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError("The recommender cannot be reached. Check your connection and try again.", "network", 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const code = data && data.error ? data.error.code : `http_${response.status}`;
    throw new ApiError(describe(response.status, data), code, response.status);
  }
  return data;
}

export function getJson(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) query.append(name, String(v));
  }
  const text = query.toString();
  return call("GET", text ? `${path}?${text}` : path);
}

// What this site lets the page do (site.json next to index.html, written by the deploy): { auth: { client_id } }.
// Unreadable: nothing optional is offered.
export async function getSiteConfig() {
  try {
    const response = await fetch(new URL("site.json", document.baseURI), { headers: { Accept: "application/json" } });
    if (!response.ok) return { auth: null };
    const config = await response.json();
    return { auth: config.auth && config.auth.client_id ? config.auth : null };
  } catch {
    return { auth: null };
  }
}

// Long-poll a request's status until it finishes; resolves with the result. ``wanted`` says whether the answer is
// still wanted: a superseded request asks no more (and costs the API nothing more).
async function finished(statusPath, personal, wanted) {
  const started = Date.now();
  for (;;) {
    if (!wanted()) throw new ApiError("superseded by a newer request", "superseded", 0);
    const asked = Date.now();
    const doc = await call("GET", `${statusPath}?wait=${WAIT_S}`, undefined, personal);
    if (doc.status === "COMPLETED") return doc.result;
    if (doc.status === "FAILED") {
      const error = doc.error || { code: "failed", message: "the request failed" };
      throw new ApiError(EXPLAIN[error.code] || `The request failed: ${error.message}`, error.code, 200);
    }
    if (Date.now() - started > WAIT_LIMIT_MS) {
      throw new ApiError("The recommender is taking too long. Please try again.", "timeout", 0);
    }
    // a PENDING answer that came back at once (a server that does not long-poll): do not ask again at once
    if (Date.now() - asked < MIN_ASK_MS) await sleep(MIN_ASK_MS);
  }
}

// An anonymous request (movies similar to one, recommendations from ratings sent with it): submit, then poll.
export async function recommend(body, wanted = () => true) {
  const accepted = await call("POST", "recommendations", body);
  return finished(`recommendations/${encodeURIComponent(accepted.request_id)}`, false, wanted);
}

// The signed-in person's own recommendations (options: k, genres, exclude_genres, include_history, ...).
// The result carries the request's id (``request_id``), which a rating of one of its movies names.
export async function recommendMine(options, wanted = () => true) {
  const accepted = await call("POST", "me/recommendations", options, true);
  const result = await finished(`me/requests/${encodeURIComponent(accepted.request_id)}`, true, wanted);
  return { ...result, request_id: accepted.request_id };
}

// The signed-in person's profile: their ratings by genre and their highest-rated movies.
export async function myProfile(wanted = () => true) {
  const accepted = await call("POST", "me/profile", undefined, true);
  return finished(`me/requests/${encodeURIComponent(accepted.request_id)}`, true, wanted);
}

// Store the signed-in person's new ratings: their next recommendation request folds them in.
export function postMyEvents(events) {
  return call("POST", "me/events", { events }, true);
}

// Delete everything the service keeps of the signed-in person (their ratings, requests and results).
export function forgetMe() {
  return call("DELETE", "me", undefined, true);
}

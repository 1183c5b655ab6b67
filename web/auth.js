// Sign-up and sign-in with the site's Amazon Cognito user pool, through the Cognito API's own flows (SignUp,
// ConfirmSignUp, InitiateAuth with USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH, GlobalSignOut, DeleteUser). The page
// calls them at "auth/" on its own origin: the deployed site's CloudFront sends that path to Cognito's endpoint, the
// local stack's gateway to moto's; either way the page's code and its Content-Security-Policy are the same.
//
// Kept: the refresh token and the e-mail address in this origin's localStorage (so a reload keeps the person signed
// in; no script of another origin can read it, and the page loads no script but its own), the ID and access tokens in
// memory only. The ID token (1 hour) goes to the API's /me routes; it is refreshed a minute before it expires.

const AUTH = new URL("auth/", document.baseURI);
const STORE = "recommender.session";
const EARLY_S = 60;

export class AuthError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

let clientId = null;
let tokens = null; // { id, access, expires (epoch s) }
const listeners = new Set();

// Cognito's errors, in words for a person.
const WORDS = {
  NotAuthorizedException: "The e-mail address or the password is wrong.",
  UserNotFoundException: "The e-mail address or the password is wrong.",
  UsernameExistsException: "An account with this e-mail address exists already: sign in instead.",
  InvalidPasswordException: "The password is too weak: use at least 8 characters with a lower-case letter and a digit.",
  CodeMismatchException: "That code is not the one we sent.",
  ExpiredCodeException: "That code has expired: ask for a new one.",
  UserNotConfirmedException: "Confirm your e-mail address first, with the code we sent.",
  TooManyRequestsException: "Too many attempts. Please wait a moment.",
  LimitExceededException: "Too many attempts. Please wait a moment.",
};

async function cognito(operation, body) {
  let response;
  try {
    response = await fetch(AUTH, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": `AWSCognitoIdentityProviderService.${operation}`,
      },
      body: JSON.stringify(body),
    });
  } catch {
    throw new AuthError("Sign-in cannot be reached. Check your connection and try again.", "network");
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  if (!response.ok) {
    const code = String(data.__type || data.code || `http_${response.status}`).split("#").pop();
    throw new AuthError(WORDS[code] || data.message || `Sign-in failed (HTTP ${response.status}).`, code);
  }
  return data;
}

function claims(token) {
  const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(part + "=".repeat((4 - (part.length % 4)) % 4)), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function saved() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || "null");
  } catch {
    return null;
  }
}

function keep(result, email) {
  const previous = saved() || {};
  const refresh = result.RefreshToken || previous.refresh;
  localStorage.setItem(STORE, JSON.stringify({ refresh, email: email || previous.email }));
  tokens = { id: result.IdToken, access: result.AccessToken, expires: claims(result.IdToken).exp };
  for (const listener of listeners) listener(account());
}

function forget() {
  localStorage.removeItem(STORE);
  tokens = null;
  for (const listener of listeners) listener(null);
}

// The signed-in person ({ email, sub }) or null.
export function account() {
  if (!tokens) return null;
  const c = claims(tokens.id);
  return { email: c.email || (saved() || {}).email, sub: c.sub };
}

export function onChange(listener) {
  listeners.add(listener);
}

// Called once with site.json's auth settings; resumes a session kept from an earlier visit.
export async function init(config) {
  clientId = config && config.client_id ? config.client_id : null;
  if (!clientId) return null;
  const kept = saved();
  if (kept && kept.refresh) {
    try {
      await refresh(kept.refresh);
    } catch {
      forget(); // revoked, expired or from another pool: sign in again
    }
  }
  return account();
}

export const enabled = () => clientId !== null;

async function refresh(refreshToken) {
  const answer = await cognito("InitiateAuth", {
    ClientId: clientId,
    AuthFlow: "REFRESH_TOKEN_AUTH",
    AuthParameters: { REFRESH_TOKEN: refreshToken },
  });
  keep(answer.AuthenticationResult);
}

// A valid ID token for the API (refreshed when it is about to expire); null when signed out.
export async function idToken() {
  if (!tokens) return null;
  if (tokens.expires - Date.now() / 1000 < EARLY_S) {
    const kept = saved();
    if (!kept || !kept.refresh) {
      forget();
      return null;
    }
    await refresh(kept.refresh);
  }
  return tokens.id;
}

export async function signIn(email, password) {
  const answer = await cognito("InitiateAuth", {
    ClientId: clientId,
    AuthFlow: "USER_PASSWORD_AUTH",
    AuthParameters: { USERNAME: email, PASSWORD: password },
  });
  keep(answer.AuthenticationResult, email);
  return account();
}

// Resolves with true when the account is ready to sign in, false when a code was e-mailed to confirm it.
export async function signUp(email, password) {
  const answer = await cognito("SignUp", {
    ClientId: clientId,
    Username: email,
    Password: password,
    UserAttributes: [{ Name: "email", Value: email }],
  });
  return answer.UserConfirmed === true;
}

export function confirm(email, code) {
  return cognito("ConfirmSignUp", { ClientId: clientId, Username: email, ConfirmationCode: code });
}

// Sign out here and at Cognito (GlobalSignOut: every refresh token of the account stops working, so a session kept
// on another device ends too, and the access token is revoked).
export async function signOut() {
  const access = tokens ? tokens.access : null;
  forget();
  if (access) {
    try {
      await cognito("GlobalSignOut", { AccessToken: access });
    } catch {
      // signed out here in any case; the ID token left elsewhere expires within its hour
    }
  }
}

// Delete the account at Cognito (after the person's data were deleted through the API) and sign out.
export async function deleteAccount() {
  if (!tokens) return;
  await cognito("DeleteUser", { AccessToken: tokens.access });
  forget();
}

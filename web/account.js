// The account view (#/account): sign in, create an account (and confirm it with the e-mailed code), sign out,
// delete the account with everything the service keeps of the person.

import * as auth from "./auth.js";
import { forgetMe } from "./api.js";
import { announce, run } from "./render.js";

let root = null;
let pendingEmail = null; // signed up, waiting for the code
let pendingPassword = null;

const part = (id) => root.querySelector(`#${id}`);

export function showAccount() {
  const person = auth.account();
  part("account-signed-in").hidden = !person;
  part("account-signed-out").hidden = !!person || !auth.enabled();
  if (person) part("account-who").textContent = `Signed in as ${person.email}.`;
  part("delete-confirm").hidden = true;
}

// After a sign-in: to the person's recommendations (their view announces what it shows).
async function signedIn(email, password) {
  await auth.signIn(email, password);
  location.hash = "#/user";
}

export function initAccount(view, enabled) {
  root = view;
  part("account-off").hidden = enabled;
  part("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const email = part("sign-in-email").value.trim();
    const password = part("sign-in-password").value;
    run(root, "Signing in…", () => signedIn(email, password), "auth");
  });
  part("sign-up-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const email = part("sign-up-email").value.trim();
    const password = part("sign-up-password").value;
    run(
      root,
      "Creating your account…",
      async () => {
        if (await auth.signUp(email, password)) return signedIn(email, password);
        pendingEmail = email;
        pendingPassword = password;
        part("sign-up-form").hidden = true;
        part("confirm-form").hidden = false;
        return "code";
      },
      "auth",
    ).then((step) => {
      if (step !== "code") return;
      part("confirm-code").focus();
      announce("We e-mailed you a code to confirm your address.");
    });
  });
  part("confirm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const code = part("confirm-code").value.trim();
    run(
      root,
      "Confirming your address…",
      async () => {
        await auth.confirm(pendingEmail, code);
        part("confirm-form").hidden = true;
        part("sign-up-form").hidden = false;
        const [email, password] = [pendingEmail, pendingPassword];
        pendingEmail = pendingPassword = null;
        await signedIn(email, password);
      },
      "auth",
    );
  });
  part("sign-out").addEventListener("click", async () => {
    await run(root, "Signing out…", () => auth.signOut(), "auth");
    if (!auth.account()) announce("Signed out.");
  });
  part("delete-account").addEventListener("click", () => {
    part("delete-confirm").hidden = false;
    part("delete-confirm").focus();
  });
  part("delete-confirm").addEventListener("click", async () => {
    const gone = await run(
      root,
      "Deleting your data and your account…",
      async () => {
        const counts = await forgetMe(); // the service's copy first: with the account gone, no token could ask
        await auth.deleteAccount();
        return counts;
      },
      "auth",
    );
    if (gone) announce(`Deleted: ${gone.events_deleted} ratings, ${gone.requests_deleted} requests, and your account.`);
  });
}

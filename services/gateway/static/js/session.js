// Who is signed in: GET api/v1/me on load; the sign-in form when the gateway answers 401; the
// user (or "local mode") in the top bar and a sign-out button.
//
// Signing in posts the token to api/v1/session: the gateway checks it with the engine and keeps
// it in an HttpOnly, SameSite=Strict cookie that every later request and event stream carries
// (EventSource cannot send an Authorization header). The page never holds the token after that.
// Local mode (an engine without users, on this machine) needs no sign-in: only the indicator shows.

import { api } from './api.js';
import { $ } from './dom.js';

export class Session {
  /**
   * @param {object} handlers signedIn(caller | null): the app may load (null: the gateway could
   *   not say who is calling, e.g. the engine is down; the app loads as before and shows why);
   *   signedOut(reason): the app is hidden behind the form (reason: 'expired' or 'start').
   */
  constructor({ signedIn, signedOut }) {
    this.signedIn = signedIn;
    this.signedOut = signedOut;
    this.caller = null;
    this.state = 'unknown'; // 'unknown' | 'in' | 'out'
    this.view = $('signin');
    this.form = $('signin-form');
    this.token = $('signin-token');
    this.button = $('signin-btn');
    this.status = $('signin-status');
    this.who = $('who');
    this.signOutBtn = $('signout-btn');
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.signOutBtn.addEventListener('click', () => this.signOut());
  }

  // On load: who is calling? Signs in (the callback) or shows the form.
  async start() {
    let err = await this._me();
    if (!err) return;
    if (err.status === 401) {
      // A cookie the engine refuses (a revoked key, or another Hindsight's on this host: cookies
      // ignore ports) would stop even local mode from working: drop it and ask once more.
      await api.signOut().catch(() => {});
      err = await this._me();
      if (!err) return;
    }
    if (err.status === 401) this._showForm('', 'start');
    else this._enter(null);
  }

  // Any other request answered 401: the key was revoked, or the session expired.
  expired(err) {
    if (this.state === 'out') return;
    this._showForm(`Signed out: ${err?.message || 'the gateway asks for credentials'}. Sign in again.`, 'expired');
  }

  async submit() {
    const token = this.token.value.trim().replace(/^bearer\s+/i, '');
    if (!token) {
      this._say('Enter an API key (hsk_…) or a token.', true);
      this.token.focus();
      return;
    }
    this.button.disabled = true;
    this._say('Signing in…');
    try {
      const caller = await api.signIn(token);
      this.token.value = '';
      // The cookie must have stuck: a browser blocking cookies, or one over its 4 KB limit (a
      // long JWT), drops it without a word.
      const kept = await api.me().then(() => true, (err) => err.status !== 401);
      if (!kept) {
        this._say('The gateway accepted the token, but this browser did not keep the session cookie '
          + '(cookies blocked, or a token longer than 4 KB).', true);
        return;
      }
      this._say('');
      this._enter(caller);
    } catch (err) {
      this._say(err.status === 401 ? `Not signed in: ${err.message}` : `Could not sign in: ${err.message}`, true);
      this.token.select();
    } finally {
      this.button.disabled = false;
    }
  }

  async signOut() {
    this.signOutBtn.disabled = true;
    try {
      await api.signOut();
    } catch (err) {
      this.signOutBtn.disabled = false;
      $('banner').textContent = `Sign-out failed: ${err.message}`;
      $('banner').hidden = false;
      return;
    }
    // A fresh page: nothing of this user's runs stays in memory (the stream worker included),
    // and the next one signs in on an empty page.
    history.replaceState(null, '', location.pathname + location.search);
    location.reload();
  }

  async _me() {
    try {
      this._enter(await api.me());
      return null;
    } catch (err) {
      return err;
    }
  }

  _enter(caller) {
    this.caller = caller;
    this.state = 'in';
    this.view.hidden = true;
    document.body.dataset.auth = caller ? caller.auth_method : 'unknown';
    this._showWho();
    this.signedIn(caller);
  }

  _showForm(message, reason) {
    this.caller = null;
    this.state = 'out';
    document.body.dataset.auth = 'signed-out';
    this.who.hidden = true;
    this.signOutBtn.hidden = true;
    this.view.hidden = false;
    this._say(message, !!message);
    this.signedOut(reason);
    this.token.focus();
  }

  _showWho() {
    const c = this.caller;
    if (!c) {
      this.who.hidden = true;
      this.signOutBtn.hidden = true;
      return;
    }
    const local = c.auth_method === 'local';
    this.who.dataset.method = c.auth_method;
    this.who.textContent = local ? 'local mode' : `${c.user_id}${c.role === 'admin' ? ' (admin)' : ''}`;
    this.who.title = (local
      ? 'No users are configured: you are the one local user, on this machine only'
      : `Signed in as ${c.user_id} (${c.auth_method === 'jwt' ? 'JWT' : 'API key'})`);
    this.who.hidden = false;
    // Local mode has no session to end.
    this.signOutBtn.hidden = local;
    this.signOutBtn.disabled = false;
  }

  _say(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle('error', error);
  }
}

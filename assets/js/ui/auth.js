// Sign up / log in screen. Errors appear next to the field (or form) that caused them.

import { h, clear, append } from './dom.js';
import * as api from '../api.js';

export function authScreen(root, onAuthed) {
  let mode = 'login';
  const form = h('form.auth-form', { novalidate: true });
  const card = h('main.auth-card', { 'aria-labelledby': 'auth-title' });
  const wrap = h('div.auth-screen', h('div.auth-brand', h('img.auth-logo', { src: 'favicon.svg', alt: '' }), h('span', 'natter')), card);
  clear(root).append(wrap);
  root.classList.remove('boot');
  root.removeAttribute('aria-busy');

  function field(name, label, type, autocomplete, extra = {}) {
    const id = `auth-${name}`;
    const input = h('input.input', { id, name, type, autocomplete, required: true, 'data-testid': id, 'aria-describedby': `${id}-err`, ...extra });
    const err = h('div.field-error', { id: `${id}-err`, 'data-testid': `${id}-error` });
    return { input, err, node: h('div.field', h('label.label', { for: id }, label), input, err) };
  }

  function render() {
    const signup = mode === 'signup';
    const email = field('email', 'Email', 'email', 'email', { inputmode: 'email' });
    const password = field('password', 'Password', 'password', signup ? 'new-password' : 'current-password', { minlength: 8 });
    const name = signup ? field('name', 'Your name', 'text', 'name', { maxlength: 100 }) : null;
    const formErr = h('div.form-error', { role: 'alert', 'data-testid': 'auth-error' });
    const submit = h('button.btn.btn-primary.btn-block', { type: 'submit', 'data-testid': 'auth-submit' }, signup ? 'Create account' : 'Log in');
    const switchBtn = h('button.link-btn', { type: 'button', 'data-testid': 'auth-switch', onclick: () => { mode = signup ? 'login' : 'signup'; render(); } },
      signup ? 'Log in' : 'Create one');
    clear(card).append(
      h('h1.auth-title', { id: 'auth-title' }, signup ? 'Create your account' : 'Log in to natter'),
      h('p.auth-sub', signup ? 'Chat with your team on your own server.' : 'Welcome back.'),
    );
    append(clear(form), [
      name?.node, email.node, password.node,
      signup ? h('p.hint', 'At least 8 characters.') : null,
      formErr, submit,
      h('p.auth-switch', signup ? 'Already have an account? ' : 'New here? ', switchBtn),
    ]);
    card.append(form);
    form.onsubmit = async (e) => {
      e.preventDefault();
      for (const f of [email, password, name]) if (f) { f.err.textContent = ''; f.input.removeAttribute('aria-invalid'); }
      formErr.textContent = '';
      const body = { email: email.input.value.trim(), password: password.input.value };
      if (signup) body.name = name.input.value.trim();
      const bad = (f, msg) => { f.err.textContent = msg; f.input.setAttribute('aria-invalid', 'true'); f.input.focus(); return true; };
      if (signup && !body.name && bad(name, 'Enter your name')) return;
      if (!/^\S+@\S+$/.test(body.email) && bad(email, 'Enter a valid email address')) return;
      if (signup && body.password.length < 8 && bad(password, 'Use at least 8 characters')) return;
      if (!signup && !body.password && bad(password, 'Enter your password')) return;
      submit.disabled = true;
      submit.classList.add('busy');
      try {
        const r = await api.post(signup ? '/auth/register' : '/auth/login', body);
        api.setToken(r.token);
        onAuthed(r.user);
      } catch (err) {
        const guess = err.field || (String(err.message).match(/^\s*(email|password|name)\b/i) || [])[1]?.toLowerCase();
        const target = { email, password, name }[guess] || null;
        let msg = err.message;
        if (!signup && err.status === 401) msg = 'Wrong email or password';
        if (err.status === 409) { bad(email, msg || 'That email is already registered'); }
        else if (target) bad(target, msg);
        else formErr.textContent = msg;
      } finally {
        submit.disabled = false;
        submit.classList.remove('busy');
      }
    };
    (signup ? name.input : email.input).focus();
  }
  render();
}

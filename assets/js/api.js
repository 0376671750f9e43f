// REST client: JSON in/out, Bearer token from localStorage, errors as ApiError.

const TOKEN_KEY = 'natter.token';

export const session = {
  token: localStorage.getItem(TOKEN_KEY),
  onUnauthorized: null,
};

export function setToken(token) {
  session.token = token;
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const OFFLINE_MSG = "Can't reach the server. Check your connection.";

function errorFrom(status, body, fallback) {
  const e = (body && body.error) || {};
  let message = e.message || fallback || `Request failed (${status})`;
  if (status === 413) message = tooLargeMessage(message);
  return new ApiError(status, e.code || `http_${status}`, message, e.field);
}

/** Turn the server's 413 text ("… 52428800 bytes (50.0 MB)") into "File is larger than 50 MB". */
export function tooLargeMessage(serverText) {
  const text = String(serverText || '');
  const round = (v) => (v >= 10 ? Math.round(v) : Number(v.toFixed(1)));
  const mb = text.match(/(\d+(?:\.\d+)?)\s*MB/i);
  if (mb) return `File is larger than ${round(Number(mb[1]))} MB`;
  const bytes = text.match(/(\d{4,})\s*bytes/i);
  if (bytes) return `File is larger than ${round(Number(bytes[1]) / 1048576)} MB`;
  return 'File is larger than the server allows';
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError(0, 'network', OFFLINE_MSG);
  }
  let data = null;
  const text = await res.text().catch(() => '');
  if (text) { try { data = JSON.parse(text); } catch { data = null; } }
  if (!res.ok) {
    const err = errorFrom(res.status, data, res.statusText);
    if (res.status === 401 && session.token && !path.startsWith('/auth/log')) session.onUnauthorized?.();
    throw err;
  }
  return data;
}

export const get = (p) => api('GET', p);
export const post = (p, b = {}) => api('POST', p, b);
export const patch = (p, b = {}) => api('PATCH', p, b);
export const del = (p) => api('DELETE', p);

/**
 * Upload one file with progress. Returns {promise, abort}.
 * promise resolves to {fileUrl, fileName, fileSize, fileMimeType}.
 */
export function upload(file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', '/chat/upload');
    if (session.token) xhr.setRequestHeader('Authorization', `Bearer ${session.token}`);
    xhr.responseType = 'text';
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress?.(e.loaded / e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText || 'null'); } catch { data = null; }
      if (xhr.status >= 200 && xhr.status < 300 && data) resolve(data);
      else reject(errorFrom(xhr.status, data, xhr.statusText));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', OFFLINE_MSG));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'Upload cancelled'));
    const fd = new FormData();
    fd.append('file', file, file.name);
    xhr.send(fd);
  });
  return { promise, abort: () => xhr.abort() };
}

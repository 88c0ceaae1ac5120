import { describe, expect, it } from 'vitest';
import { sessionSettings, StartupParamError } from '../../src/frontend/startup-params.js';

const settingsOf = (params: Record<string, string>): Map<string, string> => sessionSettings(new Map(Object.entries(params)), 'app.current_tenant_id');

describe('startup parameters, read as Postgres reads them', () => {
  it.each(["'utf-8'", 'utf-8', 'UTF8', 'utf_8', 'Unicode', '"UTF-8"'])('accepts client_encoding %s and applies UTF8', (value) => {
    expect(settingsOf({ client_encoding: value }).get('client_encoding')).toBe('UTF8');
  });

  it.each(['SJIS', 'LATIN1', "'win-1252'", 'utf16'])('refuses client_encoding %s', (value) => {
    expect(() => settingsOf({ client_encoding: value })).toThrow(StartupParamError);
  });

  it.each(['on', 'ON', 'true', 't', 'yes', 'y', '1'])('accepts standard_conforming_strings %s', (value) => {
    expect(settingsOf({ standard_conforming_strings: value }).get('standard_conforming_strings')).toBe('on');
  });

  it.each(['off', 'false', '0', 'no', ''])('refuses standard_conforming_strings %j', (value) => {
    expect(() => settingsOf({ standard_conforming_strings: value })).toThrow(StartupParamError);
  });

  it('gives an empty application_name when the client names none, its fallback when it has one', () => {
    expect(settingsOf({ user: 'u' }).get('application_name')).toBe('');
    expect(settingsOf({ fallback_application_name: 'psql' }).get('application_name')).toBe('psql');
    expect(settingsOf({ application_name: 'worker', fallback_application_name: 'psql' }).get('application_name')).toBe('worker');
  });
});

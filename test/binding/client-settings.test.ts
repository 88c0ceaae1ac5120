import { describe, expect, it } from 'vitest';
import { ClientSettings } from '../../src/binding/client-settings.js';

const startup = (): Map<string, string> => new Map([['application_name', 'app'], ['TimeZone', 'UTC']]);

describe('ClientSettings', () => {
  it('applies SETs and RESETs on top of the startup values without changing them', () => {
    const initial = startup();
    const settings = new ClientSettings(initial);
    const startKey = settings.key;
    settings.apply([{ name: 'TimeZone', value: 'Europe/Paris' }, { name: 'work_mem', value: '64MB' }]);
    expect([...settings.values]).toEqual([['application_name', 'app'], ['TimeZone', 'Europe/Paris'], ['work_mem', '64MB']]);
    expect(settings.key).not.toBe(startKey);
    // The startup map is shared with the session's re-pin: a SET must never write into it.
    expect([...initial]).toEqual([['application_name', 'app'], ['TimeZone', 'UTC']]);
    settings.apply([{ name: 'TimeZone', value: null }, { name: 'work_mem', value: null }]);
    expect([...settings.values]).toEqual([['application_name', 'app'], ['TimeZone', 'UTC']]);
    expect(settings.key).toBe(startKey);
  });

  it('RESET ALL goes back to the startup values, and later SETs in the same batch still apply', () => {
    const settings = new ClientSettings(startup());
    settings.apply([{ name: 'application_name', value: 'other' }]);
    settings.apply([{ name: 'work_mem', value: '1MB' }, { name: '*', value: null }, { name: 'search_path', value: 'tenant_acme' }]);
    expect([...settings.values]).toEqual([['application_name', 'app'], ['TimeZone', 'UTC'], ['search_path', 'tenant_acme']]);
    expect(settings.startup.has('search_path')).toBe(false);
  });

  it('an empty batch changes nothing', () => {
    const settings = new ClientSettings(startup());
    const before = settings.values;
    settings.apply([]);
    expect(settings.values).toBe(before);
  });
});

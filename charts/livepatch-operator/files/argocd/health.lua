-- Argo CD health check for livepatch.io/LivePatch: the value of
-- resource.customizations.health.livepatch.io_LivePatch in argocd-cm.
-- It reads the conditions the controller writes for GitOps tools (Ready,
-- Reconciling, Stalled) the way kstatus does, and the phase for the two states
-- kstatus has no word for: Paused and Waiting (Suspended) and RollingBack (Degraded while
-- nodes still unpatch). docs/gitops-health.md has the whole table.
local hs = {}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function holds(kind)
  local c = condition(kind)
  return c ~= nil and c.status == "True"
end

local function said(kind, otherwise)
  local c = condition(kind)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return otherwise
end

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "being deleted: every node unpatches before the LivePatch goes"
  return hs
end

if obj.status == nil or obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "waiting for the controller to act on generation " .. tostring(obj.metadata.generation)
  return hs
end

if holds("Stalled") then
  hs.status = "Degraded"
  hs.message = said("Stalled", "the rollout stopped and waits for a person")
  return hs
end

if obj.status.phase == "RollingBack" then
  hs.status = "Degraded"
  hs.message = said("Degraded", "rolling back")
  return hs
end

if obj.status.phase == "Paused" or obj.status.phase == "Waiting" then
  hs.status = "Suspended"
  hs.message = said("Reconciling", "paused")
  return hs
end

if holds("Ready") then
  hs.status = "Healthy"
  hs.message = said("Ready", "")
  return hs
end

hs.status = "Progressing"
hs.message = said("Reconciling", "waiting for the controller")
return hs
